"""Edits made directly in a system of record outside Countersign reach the trail when Countersign reads it."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from audit.models import AuditEvent
from records.models import Change, ChangeAction, RecordSighting
from records.selectors import record_state_at
from records.services.changes import ChangeOrigin, change_update
from records.store import RecordRef, get_store
from tests.helpers.factories import UserFactory
from tests.helpers.memory_store import MemoryRecordStore, bound
from tests.helpers.seeing import make_auditor

T1 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
T2 = T1 + timedelta(hours=2)
MARIA = RecordRef("customer", "CUS-1")


@pytest.fixture
def memory(db: None) -> Iterator[MemoryRecordStore]:
    store = MemoryRecordStore()
    with bound("customer", store):
        store.create_many("customer", [("CUS-1", {"full_name": "Maria Lopez", "priority": "normal"})])
        yield store


def _outside(action: str = "record.changed_outside") -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_an_edit_made_in_the_system_is_on_the_trail_once_with_the_values_and_the_window(memory):
    with time_machine.travel(T1, tick=False):
        assert get_store("customer").fetch(MARIA, ["priority"]).values == {"priority": "normal"}
    memory.write(MARIA, {"priority": "urgent", "full_name": "María López"}, expected_version=1)

    with time_machine.travel(T2, tick=False):
        found = get_store("customer").fetch(MARIA, ["priority"])
    assert (found.values, found.version) == ({"priority": "urgent"}, 2)
    [event] = _outside()
    assert (event.record_type, event.record_id, event.actor_label) == ("customer", "CUS-1", "outside Countersign")
    assert (event.old_value, event.new_value) == (
        {"full_name": "Maria Lopez", "priority": "normal"},
        {"full_name": "María López", "priority": "urgent"},
    )
    assert event.details == {
        "seen_at": T1.isoformat(),
        "found_at": T2.isoformat(),
        "version_seen": 1,
        "version_found": 2,
    }
    assert event.occurred_at == T2

    get_store("customer").fetch(MARIA)
    get_store("customer").fetch_many("customer", ["CUS-1"])
    assert len(_outside()) == 1


def test_archiving_in_the_system_is_an_outside_change_of_visibility(memory):
    get_store("customer").fetch(MARIA)
    memory.set_hidden(MARIA, archived=True, deleted=False, expected_version=1)
    get_store("customer").snapshot_many("customer", ["CUS-1"])
    [event] = _outside()
    assert (event.old_value, event.new_value) == ({"archived": False}, {"archived": True})


def test_countersigns_own_writes_are_not_outside_changes(memory):
    store = get_store("customer")
    store.fetch(MARIA)
    change_update(ref=MARIA, values={"priority": "high"}, origin=ChangeOrigin(applied_by="worker@test"))
    store.set_hidden(MARIA, archived=True, deleted=False, expected_version=2)
    store.restore_many("customer", [("CUS-1", {**memory.snapshot(MARIA), "archived_at": None, "version": 4}, 3)])
    store.fetch(MARIA)
    assert _outside() == []
    sighting = RecordSighting.objects.get(record_type="customer", record_id="CUS-1")
    assert (sighting.version, sighting.values["priority"], sighting.archived) == (4, "high", False)


@pytest.mark.parametrize("in_flight", [False, True])
def test_a_write_of_countersigns_whose_sighting_was_never_moved_is_explained_by_its_change(memory, in_flight):
    """A worker that wrote to the system and stored its Change (or only its intent, stopped between the
    write and marking it done), but not the sighting, is not mistaken for someone else."""
    get_store("customer").fetch(MARIA)
    memory.write(MARIA, {"priority": "high"}, expected_version=1)
    Change.with_in_flight.create(
        in_flight=in_flight,
        record_type="customer",
        record_id="CUS-1",
        action=ChangeAction.UPDATE,
        before={"priority": "normal"},
        after={"priority": "high"},
        version_before=1,
        version_after=2,
        applied_by="worker@test",
    )
    memory.write(MARIA, {"full_name": "Maria L."}, expected_version=2)

    get_store("customer").fetch(MARIA)
    [event] = _outside()
    # The Change explains version 2, not the edit after it: only what nobody in Countersign wrote is reported.
    assert (event.old_value, event.new_value) == (
        {"full_name": "Maria Lopez", "priority": "normal"},
        {"full_name": "Maria L.", "priority": "high"},
    )
    get_store("customer").fetch(MARIA)
    memory.write(MARIA, {"priority": "low"}, expected_version=3)
    Change.objects.create(
        record_type="customer",
        record_id="CUS-1",
        action=ChangeAction.UPDATE,
        before={"priority": "high"},
        after={"priority": "low"},
        version_before=3,
        version_after=4,
        applied_by="worker@test",
    )
    get_store("customer").fetch(MARIA)
    assert len(_outside()) == 1


def test_a_list_reads_the_sightings_of_many_records_in_a_few_queries(memory, django_assert_num_queries):
    ids = [f"CUS-{n}" for n in range(100, 400)]
    memory.create_many("customer", [(record_id, {"full_name": record_id}) for record_id in ids])
    store = get_store("customer")
    with django_assert_num_queries(2):  # the sightings, then the new ones inserted
        assert len(store.fetch_many("customer", ids, ["full_name"])) == 300
    with django_assert_num_queries(2):  # the sightings, then when they were seen
        store.fetch_many("customer", ids, ["full_name"])
    for record_id in ids[:3]:
        memory.write(RecordRef("customer", record_id), {"priority": "urgent"}, expected_version=1)
    # The sightings, when the unchanged were seen, the Changes that might explain the rest, one
    # guarded update per changed record, and the trail's append.
    with django_assert_num_queries(3 + 3 + 2):
        store.fetch_many("customer", ids)
    assert sorted(event.record_id for event in _outside()) == ids[:3]


def test_state_at_walks_back_an_edit_made_outside(memory):
    with time_machine.travel(T1, tick=False):
        get_store("customer").fetch(MARIA)
    memory.write(MARIA, {"priority": "urgent"}, expected_version=1)
    with time_machine.travel(T2, tick=False):
        get_store("customer").fetch(MARIA)

    before = record_state_at(ref=MARIA, at=T1 + timedelta(minutes=1))
    assert (before.values["priority"], before.version) == ("normal", 1)
    [unsure] = before.outside_unsure
    assert (unsure.seen_at, unsure.found_at) == (T1, T2)
    assert record_state_at(ref=MARIA, at=T1 - timedelta(minutes=1)).outside_unsure == []
    after = record_state_at(ref=MARIA, at=T2)
    assert (after.values["priority"], after.version, after.outside_unsure) == ("urgent", 2, [])


def test_the_timeline_says_the_record_changed_outside_countersign_between_two_moments(memory, client, settings):
    settings.TIME_ZONE = "UTC"
    client.force_login(make_auditor(UserFactory(username="auditor")))
    url = reverse("record-timeline", args=["customer", "CUS-1"])
    with time_machine.travel(T1, tick=False):
        assert client.get(url).status_code == 200
    memory.write(MARIA, {"priority": "urgent"}, expected_version=1)

    with time_machine.travel(T2, tick=False):
        html = client.get(url).content.decode()
    assert "record.changed_outside" in html
    assert "Changed outside Countersign between 2026-12-01 09:00:00.000 and 2026-12-01 11:00:00.000" in html
    assert '<span class="field-name">priority</span>: <del>normal</del> → <ins>urgent</ins>' in html

    with time_machine.travel(T2 + timedelta(minutes=5), tick=False):
        state = client.get(url, {"at": "2026-12-01T10:00"}).content.decode()
    assert "this moment falls between the two" in state
    assert '<td data-field="priority">normal</td>' in state


def test_a_write_right_after_reading_the_record_moves_its_sighting_in_one_statement(memory, django_assert_num_queries):
    store = get_store("customer")
    store.fetch(MARIA, ["priority"])
    with django_assert_num_queries(1):
        store.write(MARIA, {"priority": "high"}, expected_version=1)
    sighting = RecordSighting.objects.get(record_type="customer", record_id="CUS-1")
    assert (sighting.version, sighting.values["priority"], sighting.values["full_name"]) == (2, "high", "Maria Lopez")
    # Written without reading it first: the sighting is read to know the rest of the record.
    with django_assert_num_queries(2):
        store.write(MARIA, {"priority": "low"}, expected_version=2)
    assert RecordSighting.objects.get(record_type="customer", record_id="CUS-1").values["priority"] == "low"
    store.fetch(MARIA)
    assert not AuditEvent.objects.filter(action="record.changed_outside").exists()
