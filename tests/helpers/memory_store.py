"""A second record store, held in a dict: what a connector outside the database looks like to Countersign.

It joins neither the caller's round trips (`fetch_query` and `write_query` answer None) nor its
transaction, and takes no locks: the tests that use it run one writer at a time.

It can play what a real system of record does to its callers: stop answering (`unreachable`), write
and lose the answer on the way back (`lose_answers`), and take an edit made in its own screens
(`edit_outside`); `refuse_writes` answers reads and fails writes before they land. `writes` counts
the writes that landed.
"""

import copy
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from records.catalogue import RECORD_TYPES, FieldSpec, Kind
from records.store import (
    MovedReference,
    RecordNotFound,
    RecordRef,
    RecordState,
    RecordStore,
    Snapshot,
    StoreUnavailable,
    VersionMismatch,
    get_store,
    store_bind,
)


@dataclass
class _Row:
    values: dict[str, Any]
    version: int = 1
    archived_at: str | None = None
    deleted_at: str | None = None


def _default(spec: FieldSpec) -> Any:
    if spec.kind == Kind.BOOL:
        return False
    if spec.kind == Kind.TAGS:
        return []
    if spec.kind == Kind.ENUM:
        return spec.choices[0]
    if spec.kind == Kind.DECIMAL:
        return "0.00"
    if spec.kind == Kind.REF:
        return None
    return ""


class MemoryRecordStore(RecordStore):
    # Held in this process, not in the database: a write does not roll back with the caller's transaction.
    in_default_database = False

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.rows: dict[RecordRef, _Row] = {}
        self.unreachable = ""  # while set, every call raises StoreUnavailable with this reason
        self.refuse_writes = ""  # while set, reads answer and writes raise StoreUnavailable before landing
        self.lose_answers = 0  # this many next writes land, then raise StoreUnavailable as a lost answer would
        self.writes = 0

    def _answering(self) -> None:
        if self.unreachable:
            raise StoreUnavailable(self.name, self.unreachable)

    def _writing(self) -> None:
        self._answering()
        if self.refuse_writes:
            raise StoreUnavailable(self.name, self.refuse_writes)

    def _answered(self) -> None:
        self.writes += 1
        if self.lose_answers:
            self.lose_answers -= 1
            raise StoreUnavailable(self.name, "the connection dropped before the answer came back")

    def edit_outside(self, ref: RecordRef, values: dict[str, Any]) -> None:
        """Someone changes the record in the system's own screens: new values, next version."""
        row = self._row(ref)
        row.values.update(copy.deepcopy(values))
        row.version += 1

    def _row(self, ref: RecordRef) -> _Row:
        try:
            return self.rows[ref]
        except KeyError:
            raise RecordNotFound(f"no {ref.record_type} '{ref.record_id}'") from None

    def _state(self, ref: RecordRef, row: _Row, fields: list[str] | None) -> RecordState:
        record_type = RECORD_TYPES[ref.record_type]
        names = record_type.field_names if fields is None else fields
        return RecordState(
            ref=ref,
            version=row.version,
            values={name: copy.deepcopy(row.values[name]) for name in names},
            title=str(row.values[record_type.title_field]),
            archived=row.archived_at is not None,
            deleted=row.deleted_at is not None,
        )

    def _check(self, ref: RecordRef, expected_version: int) -> _Row:
        row = self._row(ref)
        if row.version != expected_version:
            raise VersionMismatch(ref, expected_version, row.version)
        return row

    def _refuse_missing_references(self, record_type: str, values: dict[str, Any]) -> None:
        for name, value in values.items():
            spec = RECORD_TYPES[record_type].field(name)
            if spec.kind == Kind.REF and not get_store(spec.ref_type).fetch_many(spec.ref_type, [value], fields=[]):
                raise RecordNotFound(f"no {spec.ref_type} '{value}' for {name}")

    def fetch(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> RecordState:
        self._answering()
        return self._state(ref, self._row(ref), fields)

    def fetch_many(
        self, record_type: str, record_ids: Iterable[str], fields: list[str] | None = None
    ) -> dict[str, RecordState]:
        refs = (RecordRef(record_type, record_id) for record_id in set(record_ids))
        return {ref.record_id: self._state(ref, self.rows[ref], fields) for ref in refs if ref in self.rows}

    def fetch_query(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> None:
        return None

    def write(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> RecordState:
        self._writing()
        row = self._check(ref, expected_version)
        self._refuse_missing_references(ref.record_type, values)
        row.values.update(copy.deepcopy(values))
        row.version += 1
        self._answered()
        return RecordState(ref=ref, version=row.version, values=copy.deepcopy(values))

    def write_query(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> None:
        return None

    def set_hidden(self, ref: RecordRef, *, archived: bool, deleted: bool, expected_version: int) -> RecordState:
        self._writing()
        row = self._check(ref, expected_version)
        now = timezone.now().isoformat()
        row.archived_at = (row.archived_at or now) if archived else None
        row.deleted_at = (row.deleted_at or now) if deleted else None
        row.version += 1
        self._answered()
        return self._state(ref, row, None)

    def snapshot(self, ref: RecordRef, *, lock: bool = False) -> Snapshot:
        row = self._row(ref)
        return {
            "values": copy.deepcopy(row.values),
            "version": row.version,
            "archived_at": row.archived_at,
            "deleted_at": row.deleted_at,
        }

    def snapshot_many(self, record_type: str, record_ids: Iterable[str], *, lock: bool = False) -> dict[str, Snapshot]:
        refs = (RecordRef(record_type, record_id) for record_id in sorted(set(record_ids)))
        return {ref.record_id: self.snapshot(ref) for ref in refs if ref in self.rows}

    def restore_many(self, record_type: str, items: Sequence[tuple[str, Snapshot, int]]) -> None:
        for record_id, snapshot, expected_version in items:
            self._check(RecordRef(record_type, record_id), expected_version)
            self._refuse_missing_references(record_type, snapshot["values"])
        for record_id, snapshot, _ in items:
            row = self.rows[RecordRef(record_type, record_id)]
            row.values.update(copy.deepcopy(snapshot["values"]))
            row.archived_at, row.deleted_at = snapshot["archived_at"], snapshot["deleted_at"]
            row.version = snapshot["version"]

    def referring(self, record_type: str, field: str, target_id: str) -> list[str]:
        return [
            ref.record_id
            for ref, row in self.rows.items()
            if ref.record_type == record_type and row.values[field] == target_id
        ]

    def move_references(self, record_type: str, field: str, from_id: str, to_id: str) -> list[MovedReference]:
        moved = []
        for record_id in self.referring(record_type, field, from_id):
            ref = RecordRef(record_type, record_id)
            before = self.rows[ref].version
            after = self.write(ref, {field: to_id}, expected_version=before)
            moved.append(MovedReference(ref, field, before, after.version))
        return moved

    def create_many(self, record_type: str, records: Sequence[tuple[str, dict[str, Any]]]) -> None:
        fields = RECORD_TYPES[record_type].fields
        for record_id, values in records:
            self._refuse_missing_references(record_type, values)
            row = {spec.name: _default(spec) for spec in fields} | copy.deepcopy(values)
            self.rows[RecordRef(record_type, record_id)] = _Row(values=row)


@contextmanager
def bound(record_type: str, store: RecordStore) -> Iterator[RecordStore]:
    """`record_type` reached through `store` for the length of the block, then through its own store again."""
    replaced = store_bind(record_type=record_type, store=store)
    try:
        yield store
    finally:
        store_bind(record_type=record_type, store=replaced)
