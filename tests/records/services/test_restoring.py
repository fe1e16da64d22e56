"""Undo through a store outside the database: per-field conflicts, unarchive and undelete, and a
multi-record undo that never leaves records half restored in silence."""

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack

import pytest
from django.db import transaction

from audit.models import AuditEvent
from audit.services import Actor
from records.models import Change, ChangeAction
from records.services.changes import ChangeOrigin, change_archive, change_delete, change_merge, change_update
from records.services.revert import RevertConflict, RevertOutcome, change_revert, changes_revert
from records.store import RecordRef, Snapshot, StoreUnavailable, get_store
from tests.helpers.memory_store import MemoryRecordStore, bound

ORIGIN = ChangeOrigin(applied_by="worker@test", workflow_slug="triage")
OPS = Actor.system("ops")
MARIA = RecordRef("customer", "CUS-1")
JAMES = RecordRef("customer", "CUS-2")


class InterferingStore(MemoryRecordStore):
    """A store outside the database where something happens to a record just before an undo writes it
    (an edit in the system's own screen, the system going away): `before_restore[record_id]`."""

    def __init__(self) -> None:
        super().__init__()
        self.before_restore: dict[str, Callable[[], None]] = {}

    def restore_many(self, record_type: str, items: Sequence[tuple[str, Snapshot, int]]) -> None:
        for record_id, _, _ in items:
            if interfere := self.before_restore.pop(record_id, None):
                interfere()
        super().restore_many(record_type, items)


@pytest.fixture
def outside(db: None) -> Iterator[InterferingStore]:
    store = InterferingStore()
    with ExitStack() as stack:
        for record_type in ("customer", "order"):
            stack.enter_context(bound(record_type, store))
        store.create_many(
            "customer",
            [
                ("CUS-1", {"full_name": "Maria Lopez", "priority": "normal", "sentiment": "neutral"}),
                ("CUS-2", {"full_name": "James Smith", "priority": "low"}),
            ],
        )
        yield store


def _update(ref: RecordRef, **values: str) -> Change:
    return change_update(ref=ref, values=values, origin=ORIGIN)


def test_a_field_the_system_changed_since_our_write_is_a_conflict_and_is_never_overwritten(outside):
    change = _update(MARIA, priority="high", sentiment="positive")
    outside.write(MARIA, {"priority": "urgent"}, expected_version=2)

    with pytest.raises(RevertConflict) as conflict:
        change_revert(change=change, actor=OPS, applied_by="ops")
    [part] = conflict.value.result.conflicts
    assert (part.field, part.before, part.written, part.now) == ("priority", "normal", "high", "urgent")
    assert "priority: before 'normal', we wrote 'high', now 'urgent'" in str(conflict.value)
    held = outside.fetch(MARIA)
    assert (held.values["priority"], held.values["sentiment"], held.version) == ("urgent", "positive", 3)
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()
    # The read that found the conflict also put the edit made there on the record's timeline.
    assert AuditEvent.objects.filter(action="record.changed_outside", record_id="CUS-1").count() == 1

    # The field nobody else touched can still be undone alone, leaving the system's edit in place.
    revert = change_revert(change=change, actor=OPS, applied_by="ops", fields=["sentiment"])
    held = outside.fetch(MARIA)
    assert (held.values["priority"], held.values["sentiment"], held.version) == ("urgent", "neutral", 4)
    assert (revert.before, revert.after, revert.version_before, revert.version_after) == (
        {"sentiment": "positive"},
        {"sentiment": "neutral"},
        3,
        4,
    )


def test_an_edit_in_the_system_to_another_field_does_not_stop_the_undo_and_is_kept(outside):
    change = _update(MARIA, priority="high")
    outside.write(MARIA, {"full_name": "María López"}, expected_version=2)
    change_revert(change=change, actor=OPS, applied_by="ops")
    held = outside.fetch(MARIA)
    assert (held.values["priority"], held.values["full_name"], held.version) == ("normal", "María López", 4)


@pytest.mark.parametrize("hide", [change_archive, change_delete])
def test_archive_and_delete_are_undone_by_bringing_the_record_back_in_the_system(outside, hide):
    change = hide(ref=MARIA, origin=ORIGIN)
    assert outside.fetch(MARIA).archived or outside.fetch(MARIA).deleted
    change_revert(change=change, actor=OPS, applied_by="ops")
    held = outside.fetch(MARIA)
    assert (held.archived, held.deleted, held.version, held.values["full_name"]) == (False, False, 3, "Maria Lopez")


def test_an_unarchive_after_the_system_archived_it_again_is_a_conflict(outside):
    change = change_archive(ref=MARIA, origin=ORIGIN)
    outside.set_hidden(MARIA, archived=False, deleted=False, expected_version=2)
    outside.set_hidden(MARIA, archived=True, deleted=False, expected_version=3)
    with pytest.raises(RevertConflict):
        change_revert(change=change, actor=OPS, applied_by="ops")
    assert outside.fetch(MARIA).archived


def test_a_record_edited_in_the_system_while_the_undo_runs_is_reported_and_the_others_are_written(outside):
    maria, james = _update(MARIA, priority="high"), _update(JAMES, priority="urgent")
    outside.before_restore["CUS-2"] = lambda: outside.write(JAMES, {"priority": "normal"}, expected_version=2)

    results = changes_revert(changes=[maria, james], actor=OPS, applied_by="ops")

    assert [result.outcome for result in results] == [RevertOutcome.REVERTED, RevertOutcome.CONFLICT]
    assert "CUS-2 changed outside Countersign while the undo ran" in results[1].detail
    assert [part.note for part in results[1].conflicts] == ["changed outside Countersign while the undo ran"]
    assert outside.fetch(MARIA).values["priority"] == "normal"
    assert outside.fetch(JAMES).values["priority"] == "normal"  # the system's edit, not ours
    reverts = Change.objects.filter(action=ChangeAction.REVERT)
    assert [(r.record_id, r.reverts_id) for r in reverts] == [("CUS-1", maria.id)]
    assert list(AuditEvent.objects.filter(action="change.reverted").values_list("record_id", flat=True)) == ["CUS-1"]


def test_a_store_that_goes_away_part_way_keeps_what_was_written_and_reports_the_rest(outside):
    maria, james = _update(MARIA, priority="high"), _update(JAMES, priority="urgent")

    def gone() -> None:
        raise StoreUnavailable("crm", "connection refused")

    outside.before_restore["CUS-2"] = gone
    results = changes_revert(changes=[maria, james], actor=OPS, applied_by="ops")
    assert [result.outcome for result in results] == [RevertOutcome.REVERTED, RevertOutcome.UNREACHABLE]
    assert "crm is unreachable: connection refused; whether customer:CUS-2 was written is not known" in (
        results[1].detail
    )
    assert [r.record_id for r in Change.objects.filter(action=ChangeAction.REVERT)] == ["CUS-1"]
    assert outside.fetch(JAMES).values["priority"] == "urgent"


def test_a_store_unreachable_before_anything_was_written_writes_nothing(outside):
    change = _update(MARIA, priority="high")

    def gone() -> None:
        raise StoreUnavailable("crm", "timed out")

    outside.before_restore["CUS-1"] = gone
    with pytest.raises(StoreUnavailable), transaction.atomic():
        change_revert(change=change, actor=OPS, applied_by="ops")
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()
    assert not AuditEvent.objects.filter(action="change.reverted").exists()
    assert outside.fetch(MARIA).values["priority"] == "high"


def test_an_unmerge_held_outside_stands_or_falls_whole(outside):
    outside.create_many(
        "order",
        [
            ("ORD-1", {"customer": "CUS-2", "order_number": "#1", "amount": "1.00"}),
            ("ORD-2", {"customer": "CUS-2", "order_number": "#2", "amount": "2.00"}),
        ],
    )
    merge = change_merge(duplicate=JAMES, survivor=MARIA, origin=ORIGIN)
    second = RecordRef("order", "ORD-2")
    outside.before_restore["ORD-2"] = lambda: outside.write(second, {"order_number": "#2b"}, expected_version=2)

    with pytest.raises(RevertConflict) as conflict:
        change_revert(change=merge, actor=OPS, applied_by="ops")

    assert "order:ORD-2 customer: before 'CUS-2', we wrote 'CUS-1', now 'CUS-1' (changed outside Countersign while" in (
        str(conflict.value)
    )
    # What the unmerge had written before ORD-2 refused was written back: nothing of it stands.
    first = outside.fetch(RecordRef("order", "ORD-1"))
    assert (first.values["customer"], first.version) == ("CUS-1", 4)
    assert outside.fetch(JAMES).archived
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()
    assert get_store("order").fetch(second).values["customer"] == "CUS-1"
