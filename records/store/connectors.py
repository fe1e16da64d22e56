"""The connectors a stores file can name, and what a connector class provides.

A connector is a class that builds the `RecordStore` of one record type from its binding in the
stores file. Each is named here by import path, so a connector whose module is not installed fails
only when a binding names it, with a message saying so. Adding one: write the class (the
`Connector` and `ConnectedStore` protocols below), add its name here, and pass the store contract
tests (see docs/record-stores.md).
"""

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from records.store.protocol import RecordStore

CONNECTORS: dict[str, str] = {
    "builtin": "records.store.builtin.DjangoRecordStore",
    "sql": "records.store.sql.SqlRecordStore",
    "bottlecrm": "records.store.bottlecrm.BottleCrmStore",
}

ACTIONS = ("update", "archive", "delete", "merge")

Problems = list[tuple[str, str]]
"""(key, reason) pairs: the key as the stores file writes it under the binding (`table`,
`fields.email`), and why it is refused."""


@dataclass(frozen=True)
class StoreCheck:
    """What `check_stores` found on one store: whether it answered, what it saw, what is wrong."""

    reachable: bool
    found: list[str] = field(default_factory=list)
    problems: Problems = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reachable and not self.problems

    @property
    def message(self) -> str:
        """One line for the binding's last check: the problems, else what was found."""
        if self.problems:
            return "; ".join(f"{key}: {reason}" for key, reason in self.problems)
        return "; ".join(self.found)


class ConnectedStore(RecordStore, Protocol):
    """A store built from a binding: the record-store protocol, plus what the loaders and
    `check_stores` ask of it."""

    def supports(self, action: str) -> bool:
        """Whether the store can carry out `action` (`update`, `archive`, `delete`, `merge`) as
        configured: archive needs an archive column, merge needs a store that moves related rows."""
        ...

    def check(self, record_type: str) -> StoreCheck:
        """Connect, read one record, and check that every mapped field exists with a type the
        catalogue's kind can live in. Never raises for an unreachable store: says so instead."""
        ...


class Connector(Protocol):
    """What a connector class offers (as class methods) to the stores file's loader and the registry."""

    def validate(self, settings: Mapping[str, Any], fields: Mapping[str, str], *, record_type: str) -> Problems:
        """Problems with the binding of `record_type`: its settings (as written, placeholders
        unexpanded) and field map (catalogue name -> the system's name), found without connecting:
        missing or unknown keys, wrong shapes, a record type or field the system cannot hold. The
        loader has already checked that each field is in the catalogue."""
        ...

    def from_binding(
        self,
        *,
        record_type: str,
        settings: Mapping[str, Any],
        fields: Mapping[str, str],
        side_effects: Mapping[str, str],
    ) -> ConnectedStore:
        """The store for `record_type`, from settings with placeholders expanded. Must not connect:
        the first read or write does."""
        ...


class UnknownConnector(LookupError):
    pass


def connector_class(name: str) -> Connector:
    """The connector class a stores file names. Raises UnknownConnector for a name not listed
    here, or listed but whose module is not installed."""
    try:
        path = CONNECTORS[name]
    except KeyError:
        raise UnknownConnector(f"unknown connector '{name}'; known: {', '.join(CONNECTORS)}") from None
    module_name, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        raise UnknownConnector(f"connector '{name}' is not installed here (no module {module_name})") from None
    return cast(Connector, getattr(module, class_name))
