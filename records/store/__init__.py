"""How records are reached: the `RecordStore` protocol, the store bound to each record type, and
reads and writes across several types. Everything outside `records.store` comes in here."""

from records.store.many import fetch_refs, references_move, referring_refs, restore_refs, snapshot_refs
from records.store.observed import HeldSightings, sightings_held
from records.store.protocol import (
    FetchQuery,
    MovedReference,
    NotSupported,
    RecordNotFound,
    RecordRef,
    RecordState,
    RecordStore,
    Snapshot,
    StoreUnavailable,
    VersionMismatch,
    WriteQuery,
)
from records.store.registry import get_store, store_bind
from records.store.side_effects import SideEffect, store_side_effects

__all__ = [
    "FetchQuery",
    "HeldSightings",
    "MovedReference",
    "NotSupported",
    "RecordNotFound",
    "RecordRef",
    "RecordState",
    "RecordStore",
    "SideEffect",
    "Snapshot",
    "StoreUnavailable",
    "VersionMismatch",
    "WriteQuery",
    "fetch_refs",
    "get_store",
    "references_move",
    "referring_refs",
    "restore_refs",
    "sightings_held",
    "snapshot_refs",
    "store_bind",
    "store_side_effects",
]
