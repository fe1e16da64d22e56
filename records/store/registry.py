"""Which store holds each record type.

Every record type of the catalogue starts on the built-in store. `store_bind` hands a record type
to another store (a connector named in a stores file, a test's own store); nothing above `records`
changes, since everything asks `get_store(record_type)` and speaks only the `RecordStore` protocol.
"""

from records.catalogue import RECORD_TYPES
from records.store.builtin import DjangoRecordStore
from records.store.observed import observed
from records.store.protocol import RecordNotFound, RecordStore

_BUILTIN: RecordStore = DjangoRecordStore()
_BOUND: dict[str, RecordStore] = dict.fromkeys(RECORD_TYPES, _BUILTIN)


def get_store(record_type: str) -> RecordStore:
    """The store bound to `record_type`. Raises RecordNotFound for a type the catalogue does not know."""
    try:
        return _BOUND[record_type]
    except KeyError:
        raise RecordNotFound(f"unknown record type '{record_type}'") from None


def store_bind(*, record_type: str, store: RecordStore) -> RecordStore:
    """From now on, in this process, reach `record_type` through `store`. Answers the store it replaces.

    Raises ValueError for a type the catalogue does not know: a store serves the catalogue's record
    types (their fields, kinds and risks), it does not bring its own. A store outside the database
    is bound observed (`records.store.observed`), so that edits made there show on the trail.
    """
    if record_type not in RECORD_TYPES:
        raise ValueError(f"unknown record type '{record_type}'; the catalogue has {', '.join(RECORD_TYPES)}")
    replaced = _BOUND[record_type]
    _BOUND[record_type] = observed(store)
    return replaced
