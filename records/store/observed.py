"""Edits made directly in a system of record outside Countersign, found when Countersign reads it.

A store that lives elsewhere (`in_default_database` False: a company's SQL table, a CRM) is also
edited by people and programs that never pass through Countersign. The registry puts every such
store inside an `ObservedStore`, which keeps the last state Countersign saw or wrote of each record
(`RecordSighting`). A read that finds a record at another version, or with other values, appends
`record.changed_outside` to the trail: the values that changed (field: before → after), and the
window in which it happened (last seen at T1, found at T2), so the record's timeline says so.

Countersign's own writes are not outside edits: each write moves the sighting along, and a read
that finds a difference first replays the Changes Countersign holds for that record since the
sighting (a write whose transaction did not finish, an intent recorded before its write), so only
what no Change explains is reported.
"""

import json
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import Actor, EventData, audit_record_many
from records.models import Change, RecordSighting
from records.store.protocol import (
    MovedReference,
    RecordRef,
    RecordState,
    RecordStore,
    Snapshot,
)

CHUNK = 1000
OUTSIDE = Actor.system("outside Countersign")
VISIBILITY = ("archived", "deleted")


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Values as the sighting's JSON column gives them back, so that equal values compare equal."""
    loaded: dict[str, Any] = json.loads(json.dumps(values, cls=DjangoJSONEncoder))
    return loaded


@dataclass(frozen=True)
class _Found:
    """What a read found of one record: plain values (every field it read), version and visibility."""

    record_id: str
    version: int
    values: dict[str, Any]
    archived: bool
    deleted: bool

    @classmethod
    def of_state(cls, state: RecordState) -> "_Found":
        return cls(state.ref.record_id, state.version, _plain(state.values), state.archived, state.deleted)

    @classmethod
    def of_snapshot(cls, record_id: str, snapshot: Snapshot) -> "_Found":
        return cls(
            record_id,
            int(snapshot["version"]),
            _plain(snapshot["values"]),
            snapshot.get("archived_at") is not None,
            snapshot.get("deleted_at") is not None,
        )


@dataclass(frozen=True)
class _Written:
    """One write Countersign made: the version it expected and left, the values it set, and the
    visibility it set (None where it left it alone)."""

    record_id: str
    expected_version: int
    version: int
    values: dict[str, Any]
    archived: bool | None = None
    deleted: bool | None = None


def _differences(seen: RecordSighting, found: _Found) -> tuple[dict[str, Any], dict[str, Any]]:
    """What changed from the sighting to what was found, as (before, after) by field; visibility as
    `archived`/`deleted`. Fields the sighting does not hold are not compared."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in found.values.items():
        if name in seen.values and seen.values[name] != value:
            before[name], after[name] = seen.values[name], value
    for name in VISIBILITY:
        if getattr(seen, name) != getattr(found, name):
            before[name], after[name] = getattr(seen, name), getattr(found, name)
    return before, after


def _explained(seen: RecordSighting, found: _Found, changes: list[Change]) -> bool:
    """Whether Countersign's own Changes since the sighting, one after the other, lead exactly to
    what was found (so nobody else wrote in between)."""
    version = seen.version
    values = dict(seen.values)
    hidden = {name: bool(getattr(seen, name)) for name in VISIBILITY}
    for change in sorted(changes, key=lambda change: change.version_before):
        if change.version_before != version:
            return False
        for name, value in _plain(change.after).items():
            if name in ("archived_at", "deleted_at"):
                hidden[name.removesuffix("_at")] = value is not None
            else:
                values[name] = value
        version = change.version_after
    if version != found.version or any(hidden[name] != getattr(found, name) for name in VISIBILITY):
        return False
    return all(values[name] == value for name, value in found.values.items() if name in values)


def _own_changes(record_type: str, pairs: list[tuple[RecordSighting, _Found]]) -> dict[str, list[Change]]:
    """Countersign's Changes of each record between its sighting and what was found: one query."""
    wanted = Q()
    for seen, found in pairs:
        wanted |= Q(record_id=seen.record_id, version_before__gte=seen.version, version_after__lte=found.version)
    by_record: dict[str, list[Change]] = {}
    # Intents too (`Change.with_in_flight`): a write whose answer was lost is still Countersign's own.
    for change in Change.with_in_flight.filter(wanted, record_type=record_type).only(
        "record_id", "after", "version_before", "version_after"
    ):
        by_record.setdefault(change.record_id, []).append(change)
    return by_record


def _sightings(record_type: str, record_ids: Iterable[str]) -> dict[str, RecordSighting]:
    ids = sorted(set(record_ids))
    found: dict[str, RecordSighting] = {}
    for start in range(0, len(ids), CHUNK):
        rows = RecordSighting.objects.filter(record_type=record_type, record_id__in=ids[start : start + CHUNK])
        found.update((row.record_id, row) for row in rows)
    return found


def _sighting(record_type: str, found: _Found, now: datetime) -> RecordSighting:
    return RecordSighting(
        record_type=record_type,
        record_id=found.record_id,
        version=found.version,
        values=found.values,
        archived=found.archived,
        deleted=found.deleted,
        seen_at=now,
    )


def _event(record_type: str, seen: RecordSighting, found: _Found, now: datetime) -> EventData:
    before, after = _differences(seen, found)
    return EventData(
        action="record.changed_outside",
        actor=OUTSIDE,
        record_type=record_type,
        record_id=found.record_id,
        old_value=before,
        new_value=after,
        details={
            "seen_at": seen.seen_at.isoformat(),
            "found_at": now.isoformat(),
            "version_seen": seen.version,
            "version_found": found.version,
        },
        occurred_at=now,
    )


_thread = threading.local()


# How many records read one at a time a thread remembers for the writes that follow (a chunk reads
# each of its records, then writes them): more than a chunk holds.
LAST_READS = 1000


def _last_reads() -> dict[tuple[str, str], _Found]:
    reads: dict[tuple[str, str], _Found] | None = getattr(_thread, "last_reads", None)
    if reads is None:
        reads = _thread.last_reads = {}
    return reads


def _remember_read(record_type: str, found: _Found) -> None:
    """Remember a record this thread read on its own (`fetch`, `snapshot`), the oldest forgotten first."""
    reads = _last_reads()
    reads.pop((record_type, found.record_id), None)
    reads[(record_type, found.record_id)] = found
    while len(reads) > LAST_READS:
        del reads[next(iter(reads))]


def _last_read(record_type: str, record_id: str) -> _Found | None:
    """What this thread last read of this record on its own, taken once."""
    return _last_reads().pop((record_type, record_id), None)


def _observe(*, record_type: str, found: Iterable[_Found]) -> None:
    """Compare what a read found with the last state Countersign saw of each record; append
    `record.changed_outside` for each that changed in a way no Change of Countersign's explains, and
    remember what was found. A few queries, whatever the number of records."""
    found_by_id = {item.record_id: item for item in found}
    if len(found_by_id) == 1:
        _remember_read(record_type, *found_by_id.values())
    if not found_by_id:
        return
    now = timezone.now()
    known = _sightings(record_type, found_by_id)
    unchanged: dict[str, int] = {}  # record id: its sighting's id
    changed: list[tuple[RecordSighting, _Found]] = []
    for record_id, item in found_by_id.items():
        seen = known.get(record_id)
        if seen is None:
            continue
        if seen.version == item.version and _differences(seen, item) == ({}, {}):
            unchanged[record_id] = seen.pk
        else:
            changed.append((seen, item))
    first_seen = [item for record_id, item in found_by_id.items() if record_id not in known]
    held: HeldSightings | None = getattr(_thread, "held", None)
    if held is not None and not changed:  # a worker's chunk: stored with its done marks
        held.first_seen(record_type, first_seen, now)
        held.touch(record_type, unchanged, now)
        return
    with transaction.atomic(savepoint=False):
        new = [_sighting(record_type, item, now) for item in first_seen]
        RecordSighting.objects.bulk_create(new, ignore_conflicts=True)
        pks = list(unchanged.values())
        for start in range(0, len(pks), CHUNK):
            RecordSighting.objects.filter(pk__in=pks[start : start + CHUNK]).update(seen_at=now)
        if not changed:
            return
        ours = _own_changes(record_type, changed)
        events = []
        for seen, item in changed:
            # Only the reader that moves the sighting on reports the change, so two readers report it once.
            moved = RecordSighting.objects.filter(pk=seen.pk, version=seen.version, seen_at=seen.seen_at).update(
                version=item.version, values=item.values, archived=item.archived, deleted=item.deleted, seen_at=now
            )
            if moved and not _explained(seen, item, ours.get(item.record_id, [])):
                events.append(_event(record_type, seen, item, now))
        audit_record_many(events)


class ObservedStore(RecordStore):
    """A store outside the database, with every read compared with what Countersign last saw.

    Reads ask the inner store for every field (to compare them all) and answer the fields asked for;
    writes go to the inner store unchanged and then move the sighting to what was written. Anything
    else the inner store offers (its name, its checks) is reached through this object as well.
    """

    in_default_database = False

    def __init__(self, inner: RecordStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"ObservedStore({self.inner!r})"

    # reads

    def fetch(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> RecordState:
        state = self.inner.fetch(ref, None, lock=lock)
        _observe(record_type=ref.record_type, found=[_Found.of_state(state)])
        if fields is not None and not state.values.keys() >= set(fields):
            return self.inner.fetch(ref, fields, lock=lock)  # a field it does not hold: the store says why
        return _narrowed(state, fields)

    def fetch_many(
        self, record_type: str, record_ids: Iterable[str], fields: list[str] | None = None
    ) -> dict[str, RecordState]:
        ids = list(record_ids)
        states = self.inner.fetch_many(record_type, ids, None)
        _observe(record_type=record_type, found=[_Found.of_state(state) for state in states.values()])
        if fields is not None and any(not state.values.keys() >= set(fields) for state in states.values()):
            return self.inner.fetch_many(record_type, ids, fields)  # a field it does not hold: the store says why
        return {record_id: _narrowed(state, fields) for record_id, state in states.items()}

    def fetch_query(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> None:
        return None

    def snapshot(self, ref: RecordRef, *, lock: bool = False) -> Snapshot:
        snapshot = self.inner.snapshot(ref, lock=lock)
        _observe(record_type=ref.record_type, found=[_Found.of_snapshot(ref.record_id, snapshot)])
        return snapshot

    def snapshot_many(self, record_type: str, record_ids: Iterable[str], *, lock: bool = False) -> dict[str, Snapshot]:
        snapshots = self.inner.snapshot_many(record_type, record_ids, lock=lock)
        _observe(
            record_type=record_type,
            found=[_Found.of_snapshot(record_id, snapshot) for record_id, snapshot in snapshots.items()],
        )
        return snapshots

    def referring(self, record_type: str, field: str, target_id: str) -> list[str]:
        return self.inner.referring(record_type, field, target_id)

    # writes

    def write(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> RecordState:
        written = self.inner.write(ref, values, expected_version)
        self._wrote(ref.record_type, [_Written(ref.record_id, expected_version, written.version, written.values)])
        return written

    def write_query(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> None:
        return None

    def set_hidden(self, ref: RecordRef, *, archived: bool, deleted: bool, expected_version: int) -> RecordState:
        state = self.inner.set_hidden(ref, archived=archived, deleted=deleted, expected_version=expected_version)
        self._wrote(
            ref.record_type,
            [_Written(ref.record_id, expected_version, state.version, {}, state.archived, state.deleted)],
        )
        return state

    def restore_many(self, record_type: str, items: Sequence[tuple[str, Snapshot, int]]) -> None:
        self.inner.restore_many(record_type, items)
        self._wrote(
            record_type,
            [
                _Written(
                    record_id,
                    expected_version,
                    int(snapshot["version"]),
                    snapshot["values"],
                    snapshot.get("archived_at") is not None,
                    snapshot.get("deleted_at") is not None,
                )
                for record_id, snapshot, expected_version in items
            ],
        )

    def move_references(self, record_type: str, field: str, from_id: str, to_id: str) -> list[MovedReference]:
        moved = self.inner.move_references(record_type, field, from_id, to_id)
        self._wrote(
            record_type,
            [_Written(move.ref.record_id, move.version_before, move.version_after, {field: to_id}) for move in moved],
        )
        return moved

    def create_many(self, record_type: str, records: Sequence[tuple[str, dict[str, Any]]]) -> None:
        self.inner.create_many(record_type, records)
        # The store filled in its own defaults: read the new records back to know them whole.
        created = self.inner.fetch_many(record_type, [record_id for record_id, _ in records])
        _remember(record_type, [_Found.of_state(state) for state in created.values()])

    def _wrote(self, record_type: str, writes: list[_Written]) -> None:
        """Move each sighting to what Countersign wrote. A sighting that was not at the version the
        write expected does not hold the rest of the record: those records are read back whole.

        A write that follows this thread's read of the same record at the version it expected (the
        apply path reads, then writes) needs no sighting read: the write was a compare-and-set on that
        version, so the record is what the read found with the written values over it."""
        last = _last_read(record_type, writes[0].record_id) if len(writes) == 1 else None
        if last is not None and last.version == writes[0].expected_version:
            known = {last.record_id: _sighting(record_type, last, timezone.now())}
        else:
            known = _sightings(record_type, (write.record_id for write in writes))
        found: list[_Found] = []
        unknown: list[str] = []
        for write in writes:
            seen = known.get(write.record_id)
            if seen is None or seen.version != write.expected_version:
                unknown.append(write.record_id)
                continue
            found.append(
                _Found(
                    write.record_id,
                    write.version,
                    {**seen.values, **_plain(write.values)},
                    seen.archived if write.archived is None else write.archived,
                    seen.deleted if write.deleted is None else write.deleted,
                )
            )
        if unknown:
            found.extend(_Found.of_state(state) for state in self.inner.fetch_many(record_type, unknown).values())
        _remember(record_type, found)


class HeldSightings:
    """The sightings of Countersign's own writes, held to be written with the writes' done marks;
    and what its reads found as it was last seen, or seen for the first time, held with them."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str], _Found] = {}  # the last write of each record wins
        self._first: dict[tuple[str, str], tuple[_Found, datetime]] = {}  # never seen before: when read
        self._touched: dict[tuple[str, str], int] = {}  # seen as last seen: the sighting's id
        self._touched_at: datetime | None = None  # the first of those reads

    @property
    def holds_anything(self) -> bool:
        return bool(self._found or self._first or self._touched)

    def hold(self, record_type: str, found: list[_Found]) -> None:
        for item in found:
            self._found.pop((record_type, item.record_id), None)
            self._found[(record_type, item.record_id)] = item

    def first_seen(self, record_type: str, found: list[_Found], at: datetime) -> None:
        for item in found:
            self._first.setdefault((record_type, item.record_id), (item, at))

    def touch(self, record_type: str, sightings: dict[str, int], at: datetime) -> None:
        if sightings:
            self._touched.update(((record_type, record_id), pk) for record_id, pk in sightings.items())
            self._touched_at = at if self._touched_at is None else min(self._touched_at, at)

    def write(self) -> None:
        """Write the held sightings, inside the caller's transaction, and hold nothing more.

        A record Countersign wrote is remembered as written. Of the others, one seen for the first
        time is remembered as read, unless a reader elsewhere remembered it meanwhile; one found as
        last seen is marked seen at the first of the chunk's reads, unless a reader elsewhere has
        seen it since: a sighting never claims a record held still for longer than it was seen to."""
        by_type: dict[str, list[_Found]] = {}
        for (record_type, _), item in self._found.items():
            by_type.setdefault(record_type, []).append(item)
        first = [
            _sighting(record_type, item, at)
            for (record_type, record_id), (item, at) in self._first.items()
            if (record_type, record_id) not in self._found
        ]
        touched = [pk for key, pk in self._touched.items() if key not in self._found]
        touched_at = self._touched_at
        self._found, self._first, self._touched, self._touched_at = {}, {}, {}, None
        for record_type, items in by_type.items():
            _remember_now(record_type, items)
        for start in range(0, len(first), CHUNK):
            RecordSighting.objects.bulk_create(first[start : start + CHUNK], ignore_conflicts=True)
        for start in range(0, len(touched), CHUNK):
            RecordSighting.objects.filter(pk__in=touched[start : start + CHUNK], seen_at__lt=touched_at).update(
                seen_at=touched_at
            )


@contextmanager
def sightings_held() -> Iterator[HeldSightings]:
    """Within this block, this thread's writes through an observed store hold their sightings
    instead of writing each on its own (a commit per write); the caller writes them with the
    writes' done marks (`HeldSightings.write`). A sighting that is never written is only late: the
    next read finds the record at a newer version and replays Countersign's own Changes (intents
    included) since the sighting, so it reports no edit outside Countersign."""
    previous: HeldSightings | None = getattr(_thread, "held", None)
    held = _thread.held = HeldSightings()
    try:
        yield held
    finally:
        _thread.held = previous


def _remember(record_type: str, found: list[_Found]) -> None:
    """Set each record's sighting to `found`, now, or hold it for later (`sightings_held`)."""
    held: HeldSightings | None = getattr(_thread, "held", None)
    if held is not None:
        held.hold(record_type, found)
        return
    _remember_now(record_type, found)


def _remember_now(record_type: str, found: list[_Found]) -> None:
    """Set each record's sighting to `found`, now: one statement per thousand records."""
    now = timezone.now()
    for start in range(0, len(found), CHUNK):
        RecordSighting.objects.bulk_create(
            [_sighting(record_type, item, now) for item in found[start : start + CHUNK]],
            update_conflicts=True,
            unique_fields=["record_type", "record_id"],
            update_fields=["version", "values", "archived", "deleted", "seen_at"],
        )


def _narrowed(state: RecordState, fields: list[str] | None) -> RecordState:
    if fields is None:
        return state
    return RecordState(
        ref=state.ref,
        version=state.version,
        values={name: state.values[name] for name in fields},
        title=state.title,
        archived=state.archived,
        deleted=state.deleted,
    )


# The observed form of each store in use, by the store's id: a wrapper holds its store, so the id is
# not reused while the wrapper lives, and a wrapper nobody holds any more is let go.
_OBSERVED: "weakref.WeakValueDictionary[int, ObservedStore]" = weakref.WeakValueDictionary()


def observed(store: RecordStore) -> RecordStore:
    """`store` as the registry answers it: a store outside the database, observed (see
    `ObservedStore`), the same object for as long as it is in use; one in the database, as it is."""
    if store.in_default_database or isinstance(store, ObservedStore):
        return store
    wrapper = _OBSERVED.get(id(store))
    if wrapper is None:
        wrapper = _OBSERVED[id(store)] = ObservedStore(store)
    return wrapper
