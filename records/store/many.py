"""Records of several types at once, each reached through the store bound to its type.

A merge moves orders and tickets when it folds a customer, and an undo puts all of them back, so
these read, lock and write across stores in one order (by record type, then as each store orders
its own), which keeps two callers with overlapping sets from deadlocking.
"""

from collections.abc import Iterable, Sequence

from records.catalogue import RECORD_TYPES, Kind
from records.store.protocol import MovedReference, RecordRef, RecordState, Snapshot
from records.store.registry import get_store


def _by_type(refs: Iterable[RecordRef]) -> dict[str, set[str]]:
    wanted: dict[str, set[str]] = {}
    for ref in refs:
        wanted.setdefault(ref.record_type, set()).add(ref.record_id)
    return dict(sorted(wanted.items()))


def fetch_refs(refs: Iterable[RecordRef]) -> dict[RecordRef, RecordState]:
    """Several records with every field, a few queries per record type. Records that do not exist,
    or are of a type the catalogue does not know, are missing from the answer."""
    found: dict[RecordRef, RecordState] = {}
    for record_type, record_ids in _by_type(refs).items():
        if record_type in RECORD_TYPES:
            states = get_store(record_type).fetch_many(record_type, record_ids)
            found.update((state.ref, state) for state in states.values())
    return found


def snapshot_refs(refs: Iterable[RecordRef], *, lock: bool = False) -> dict[RecordRef, Snapshot]:
    """Snapshots of several records; those that do not exist are left out. With `lock`, locked in one order."""
    found: dict[RecordRef, Snapshot] = {}
    for record_type, record_ids in _by_type(refs).items():
        snapshots = get_store(record_type).snapshot_many(record_type, record_ids, lock=lock)
        found.update((RecordRef(record_type, record_id), snapshot) for record_id, snapshot in snapshots.items())
    return found


def restore_refs(items: Sequence[tuple[RecordRef, Snapshot, int]]) -> None:
    """`restore_many` for records of several types: each (ref, snapshot, expected_version)."""
    by_type: dict[str, list[tuple[str, Snapshot, int]]] = {}
    for ref, snapshot, expected_version in items:
        by_type.setdefault(ref.record_type, []).append((ref.record_id, snapshot, expected_version))
    for record_type, entries in sorted(by_type.items()):
        get_store(record_type).restore_many(record_type, entries)


def _references_to(record_type: str) -> list[tuple[str, str]]:
    """Every (record type, field) whose reference field names a record of `record_type`."""
    return [
        (other.name, spec.name)
        for other in RECORD_TYPES.values()
        for spec in other.fields
        if spec.kind == Kind.REF and spec.ref_type == record_type
    ]


def referring_refs(ref: RecordRef) -> list[tuple[RecordRef, str]]:
    """Every record that refers to `ref` through a reference field, with that field's name."""
    return [
        (RecordRef(record_type, record_id), field)
        for record_type, field in _references_to(ref.record_type)
        for record_id in get_store(record_type).referring(record_type, field, ref.record_id)
    ]


def references_move(*, source: RecordRef, target: RecordRef) -> list[MovedReference]:
    """Point every reference to `source` at `target` (a merge), each record locked and bumped one version."""
    return [
        move
        for record_type, field in _references_to(source.record_type)
        for move in get_store(record_type).move_references(record_type, field, source.record_id, target.record_id)
    ]
