from datetime import UTC, datetime
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from audit.services import (
    Actor,
    EventData,
    UnknownAuditAction,
    audit_record,
    audit_record_bulk,
    audit_verify_chain,
    event_hash,
)


def test_bulk_appended_events_chain_and_read_back_like_single_ones(db):
    audit_record(action="batch.opened", actor=Actor.system(), batch_id=1)
    moment = datetime(2026, 11, 27, 14, 14, 3, 123456, tzinfo=UTC)
    events = [
        EventData(
            action="artifact.purged",
            actor=Actor.system("retention purge"),
            proposal_id=n,
            workflow_slug="refund-notes",
            occurred_at=moment,
            old_value={"amount": Decimal("12.50"), "when": moment, "tags": ("a", "b")} if n == 0 else None,
            new_value="plain" if n == 1 else None,
            details={"artifact_id": f"a-{n}", "size": 1024, "had_file": False, "copied_from": None},
        )
        for n in range(250)
    ]
    assert audit_record_bulk(events) == 250
    audit_record(action="batch.opened", actor=Actor.system(), batch_id=2)

    checked, broken = audit_verify_chain()
    assert broken is None
    assert checked == 252
    stored = list(AuditEvent.objects.filter(action="artifact.purged").order_by("id"))
    assert [e.proposal_id for e in stored] == list(range(250))
    assert stored[0].old_value == {"amount": "12.50", "when": "2026-11-27T14:14:03.123Z", "tags": ["a", "b"]}
    assert stored[1].new_value == "plain"
    assert stored[2].old_value is None
    assert stored[0].occurred_at == datetime(2026, 11, 27, 14, 14, 3, 123000, tzinfo=UTC)
    assert stored[5].details == {"artifact_id": "a-5", "size": 1024, "had_file": False, "copied_from": None}
    assert all(event_hash(e) == e.hash for e in stored)


def test_bulk_append_refuses_an_unknown_action(db):
    with pytest.raises(UnknownAuditAction):
        audit_record_bulk([EventData(action="artifact.vanished", actor=Actor.system())])
    assert not AuditEvent.objects.exists()


def test_bulk_append_of_nothing_appends_nothing(db):
    assert audit_record_bulk([]) == 0
