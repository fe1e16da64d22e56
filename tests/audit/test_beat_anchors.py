"""Beat, in a real worker, anchors the chain outside the database and verifies it; a rewrite is caught."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from audit.models import AuditEvent, ChainProgress
from audit.services import Actor, audit_record, event_hash
from tests.helpers.worker import wait_until

KEY = "anchor-key-for-the-beat-test"


def _anchored_ids(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [json.loads(line)["event_id"] for line in path.read_text().splitlines()]


def _verified_through() -> int:
    progress = ChainProgress.objects.first()
    return progress.verified_through_id if progress else 0


def test_beat_anchors_and_verifies_and_a_recomputed_chain_is_caught(
    start_worker, audit_guard_bypassed, settings, tmp_path
):
    anchors = tmp_path / "anchors.jsonl"
    settings.AUDIT_ANCHOR_FILE = str(anchors)
    settings.AUDIT_ANCHOR_KEY = KEY
    events = [audit_record(action="workflow.changed", actor=Actor.system("test")) for _ in range(3)]
    start_worker(
        concurrency=1,
        beat=True,
        env={
            "AUDIT_ANCHOR_FILE": str(anchors),
            "AUDIT_ANCHOR_KEY": KEY,
            "AUDIT_ANCHOR_EVERY_SECONDS": "1",
            "AUDIT_VERIFY_EVERY_SECONDS": "1",
        },
    )
    wait_until(lambda: events[-1].pk in _anchored_ids(anchors), timeout=60, what="beat's first anchor")
    wait_until(lambda: _verified_through() == events[-1].pk, timeout=60, what="beat's first verification")
    call_command("verify_audit", "--anchors")
    assert Client().get("/api/v1/health").status_code == 200

    # What a database owner can do: edit an event, then relink and rehash every event after it.
    previous = events[0].hash
    for event in AuditEvent.objects.filter(pk__gte=events[1].pk).order_by("id"):
        if event.pk == events[1].pk:
            event.reason = "rewritten"
        event.prev_hash = previous
        event.hash = event_hash(event)
        AuditEvent.objects.filter(pk=event.pk).update(reason=event.reason, prev_hash=previous, hash=event.hash)
        previous = event.hash

    broken = wait_until(
        lambda: AuditEvent.objects.filter(action="audit.broken").first(), timeout=60, what="audit.broken"
    )
    assert broken.reason.startswith(f"audit chain broken at event #{events[-1].pk}: it no longer holds the hash")
    response = Client().get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["detail"] == broken.reason
    with pytest.raises(CommandError, match="no longer has the anchored hash"):
        call_command("verify_audit", "--anchors")
    assert AuditEvent.objects.filter(action="audit.broken").count() == 1
