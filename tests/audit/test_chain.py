import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.services import GENESIS_HASH, Actor, UnknownAuditAction, audit_record, audit_verify_chain


def _three_events() -> list[AuditEvent]:
    actor = Actor.system("test")
    return [
        audit_record(action="workflow.created", actor=actor, workflow_slug="a"),
        audit_record(
            action="policy.changed", actor=actor, workflow_slug="a", field="priority", old_value=None, new_value="write"
        ),
        audit_record(
            action="change.applied",
            actor=actor,
            record_type="order",
            record_id="ORD-1",
            old_value={"amount": "12.50"},
            new_value={"amount": "13.00"},
        ),
    ]


def test_events_chain_to_the_one_before(db):
    first, second, third = _three_events()
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert audit_verify_chain() == (3, None)


def test_unknown_action_is_refused(db):
    with pytest.raises(UnknownAuditAction, match="proposal.teleported"):
        audit_record(action="proposal.teleported", actor=Actor.system())
    assert AuditEvent.objects.count() == 0


def test_times_are_stored_to_the_millisecond(db):
    event = audit_record(action="workflow.created", actor=Actor.system())
    event.refresh_from_db()
    assert event.occurred_at.microsecond % 1000 == 0


@pytest.mark.parametrize("statement", ["UPDATE audit_auditevent SET reason = 'edited'", "DELETE FROM audit_auditevent"])
def test_the_database_refuses_to_edit_or_delete_events(db, statement):
    _three_events()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert AuditEvent.objects.filter(reason="").count() == 3


@pytest.mark.postgres
def test_postgres_refuses_truncate(db):
    _three_events()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 3


def test_the_orm_cannot_edit_an_event_either(db):
    event = _three_events()[0]
    event.reason = "rewritten history"
    with pytest.raises(DatabaseError), transaction.atomic():
        event.save()
    assert AuditEvent.objects.get(pk=event.pk).reason == ""


def test_verify_audit_names_the_altered_event(db, audit_guard_bypassed, capsys):
    events = _three_events()
    call_command("verify_audit")
    assert "3 event(s)" in capsys.readouterr().out
    AuditEvent.objects.filter(pk=events[1].pk).update(new_value="read")
    with pytest.raises(CommandError, match=f"event #{events[1].pk}: its content does not match"):
        call_command("verify_audit")


def test_verify_audit_names_a_removed_link(db, audit_guard_bypassed):
    events = _three_events()
    AuditEvent.objects.filter(pk=events[1].pk).delete()
    with pytest.raises(CommandError, match=f"event #{events[2].pk}: its link"):
        call_command("verify_audit")


def test_single_and_bulk_appends_link_into_one_chain(db):
    from audit.services import EventData, audit_record_many

    actor = Actor.system("test")
    single = audit_record(action="workflow.created", actor=actor, details={"n": 1})
    bulk = audit_record_many([EventData(action="policy.changed", actor=actor, details={"n": n}) for n in (2, 3)])
    last = audit_record(action="workflow.changed", actor=actor, old_value={"a": [1, "x"]}, new_value=None)
    stored = list(AuditEvent.objects.order_by("id"))
    assert [e.pk for e in stored] == [single.pk, bulk[0].pk, bulk[1].pk, last.pk]
    assert [e.hash for e in stored] == [single.hash, bulk[0].hash, bulk[1].hash, last.hash]
    assert bulk[0].prev_hash == single.hash and last.prev_hash == bulk[1].hash
    assert audit_verify_chain() == (4, None)
