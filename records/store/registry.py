"""Which store holds each record type.

A record type is on the store its binding names (a `StoreBinding` row, written by `manage.py
load_stores`), else on the built-in store. Nothing above `records` changes with the binding, since
everything asks `get_store(record_type)` and speaks only the `RecordStore` protocol.

Each process keeps the bindings it read and the stores it built from them (a store holds its
connection). It reads the bindings again at most every `STORES_REFRESH_SECONDS`, so a running worker
follows a new stores file without a restart, and the write path pays no query for it: one small
read per process per interval, whatever the number of writes. A binding whose digest is unchanged
keeps its built store. `store_bind` pins a store for a record type in this process, over any binding.
"""

import math
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from records.catalogue import RECORD_TYPES
from records.models import StoreBinding
from records.store.builtin import DjangoRecordStore
from records.store.connectors import ConnectedStore, UnknownConnector, connector_class
from records.store.observed import observed
from records.store.placeholders import MissingVariable, expand
from records.store.protocol import RecordNotFound, RecordStore, StoreUnavailable

_BUILTIN = DjangoRecordStore()
_PINNED: dict[str, RecordStore] = {}


@dataclass(frozen=True)
class Binding:
    """A binding as the registry reads it: settings as written, placeholders unexpanded."""

    record_type: str
    connector: str
    settings: dict[str, Any]
    fields: dict[str, str]
    side_effects: dict[str, str]
    digest: str


class _Bindings:
    """The bindings this process last read, when, and the stores built from them."""

    def __init__(self) -> None:
        self.by_type: dict[str, Binding] = {}
        self.fresh_until = -math.inf  # time.monotonic() until which they are not read again
        self.built: dict[tuple[str, str], ConnectedStore] = {}

    def current(self) -> dict[str, Binding]:
        if time.monotonic() >= self.fresh_until:
            self.read()
        return self.by_type

    def read(self) -> None:
        rows = StoreBinding.objects.values_list(
            "record_type", "connector", "settings", "fields", "side_effects", "digest"
        )
        self.by_type = {row[0]: Binding(*row) for row in rows}
        self.fresh_until = time.monotonic() + float(settings.COUNTERSIGN.get("STORES_REFRESH_SECONDS", 5))
        wanted = {(binding.record_type, binding.digest) for binding in self.by_type.values()}
        for key in set(self.built) - wanted:
            close = getattr(self.built.pop(key), "close", None)  # a store that holds a connection
            if callable(close):
                close()

    def forget(self) -> None:
        self.fresh_until = -math.inf


_bindings = _Bindings()


def binding_build(binding: Binding) -> ConnectedStore:
    """A new store from `binding`, with its placeholders read from this process's environment.

    Raises StoreUnavailable when it cannot be built here: an environment variable it names is not
    set, or its connector is not installed."""
    try:
        return connector_class(binding.connector).from_binding(
            record_type=binding.record_type,
            settings=expand(binding.settings),
            fields=dict(binding.fields),
            side_effects=dict(binding.side_effects),
        )
    except (MissingVariable, UnknownConnector) as error:
        raise StoreUnavailable(f"the {binding.record_type} store ({binding.connector})", str(error)) from None


def binding_store(binding: Binding) -> ConnectedStore:
    """The store built from `binding` in this process, built once per binding digest (it keeps its
    connection). Raises StoreUnavailable as `binding_build` does."""
    key = (binding.record_type, binding.digest)
    store = _bindings.built.get(key)
    if store is None:
        store = _bindings.built[key] = binding_build(binding)
    return store


def bindings_current() -> dict[str, Binding]:
    """The bindings in force in this process, by record type (record types on the built-in store
    are absent)."""
    return _bindings.current()


def bindings_reload() -> None:
    """Read the bindings again at the next `get_store` (after this process changed them)."""
    _bindings.forget()


def get_store(record_type: str) -> RecordStore:
    """The store bound to `record_type`. Raises RecordNotFound for a type the catalogue does not
    know, StoreUnavailable for a binding this process cannot build (see `binding_store`). A store
    outside the database is answered observed (`records.store.observed`), so that edits made in
    the system itself reach the trail."""
    if record_type not in RECORD_TYPES:
        raise RecordNotFound(f"unknown record type '{record_type}'")
    pinned = _PINNED.get(record_type)
    if pinned is not None:
        return observed(pinned)
    binding = _bindings.current().get(record_type)
    return _BUILTIN if binding is None else observed(binding_store(binding))


def store_bind(*, record_type: str, store: RecordStore | None) -> RecordStore | None:
    """From now on, in this process, reach `record_type` through `store`, over any binding; with
    None, through its binding again. Answers the store pinned before (None when there was none), so
    a caller can put it back.

    Raises ValueError for a type the catalogue does not know: a store serves the catalogue's record
    types (their fields, kinds and risks), it does not bring its own.
    """
    if record_type not in RECORD_TYPES:
        raise ValueError(f"unknown record type '{record_type}'; the catalogue has {', '.join(RECORD_TYPES)}")
    replaced = _PINNED.pop(record_type, None)
    if store is not None:
        _PINNED[record_type] = store
    return replaced
