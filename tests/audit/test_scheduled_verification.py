"""Beat verifies the chain a piece at a time; a break is recorded once, and the health endpoint tells."""

import pytest
from django.test import Client

from audit.models import AuditEvent, ChainProgress
from audit.services import Actor, audit_record, audit_verify_incremental, event_hash
from audit.tasks import verify_chain


def _events(count: int) -> list[AuditEvent]:
    return [audit_record(action="workflow.changed", actor=Actor.system("test")) for _ in range(count)]


def test_each_run_walks_only_the_events_appended_since_the_last(db):
    _events(3)
    first = audit_verify_incremental()
    assert (first.checked, first.broken) == (3, None)
    newest = _events(2)[-1]
    second = audit_verify_incremental()
    assert (second.checked, second.verified_through, second.broken) == (2, newest.pk, None)
    assert ChainProgress.objects.get().verified_through_hash == newest.hash
    assert not AuditEvent.objects.filter(action="audit.broken").exists()


def test_an_edited_event_appends_one_audit_broken_however_often_beat_runs(db, audit_guard_bypassed):
    _events(2)
    verify_chain()
    edited = _events(2)[0]
    AuditEvent.objects.filter(pk=edited.pk).update(reason="rewritten")
    assert verify_chain() == {"checked": 0, "verified_through": edited.pk - 1, "broken": True}
    verify_chain()
    broken = AuditEvent.objects.filter(action="audit.broken").get()
    assert (
        broken.reason
        == f"audit chain broken at event #{edited.pk}: its content does not match its hash (it was altered)"
    )
    assert broken.details["event_id"] == edited.pk


def test_a_chain_recomputed_behind_the_last_verified_event_is_caught(db, audit_guard_bypassed):
    events = _events(3)
    audit_verify_incremental()
    previous = events[0].hash
    for event in AuditEvent.objects.filter(pk__gte=events[1].pk).order_by("id"):
        event.reason = "rewritten" if event.pk == events[1].pk else event.reason
        event.prev_hash = previous
        event.hash = event_hash(event)
        AuditEvent.objects.filter(pk=event.pk).update(reason=event.reason, prev_hash=previous, hash=event.hash)
        previous = event.hash
    check = audit_verify_incremental()
    assert check.broken is not None
    assert check.broken.reason.startswith(f"audit chain broken at event #{events[-1].pk}: it no longer holds the hash")


def test_the_newest_verified_event_cut_off_is_caught(db, audit_guard_bypassed):
    events = _events(3)
    audit_verify_incremental()
    AuditEvent.objects.filter(pk=events[-1].pk).delete()
    check = audit_verify_incremental()
    assert check.broken is not None
    assert f"event #{events[-1].pk}: it no longer holds the hash" in check.broken.reason


def test_health_answers_503_naming_the_break_and_200_while_sound(db, audit_guard_bypassed):
    client = Client()
    edited = _events(2)[1]
    audit_verify_incremental()
    assert client.get("/api/v1/health").status_code == 200
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    AuditEvent.objects.filter(pk=edited.pk).delete()
    audit_verify_incremental()
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"].startswith(f"audit chain broken at event #{edited.pk}")


def test_beat_verifies_the_chain(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["audit-verify-chain"]
    assert entry["task"] == "audit.verify_chain"
    assert entry["schedule"] <= 600


@pytest.mark.postgres
def test_incremental_verification_on_postgres_uses_the_same_rules(db, audit_guard_bypassed):
    edited = _events(3)[2]
    AuditEvent.objects.filter(pk=edited.pk).update(reason="rewritten")
    check = audit_verify_incremental()
    assert check.checked == 2
    assert check.broken is not None and f"#{edited.pk}" in check.broken.reason
