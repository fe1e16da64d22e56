"""Follow-ups with a real Celery worker and beat, through the real outbox: a stop switch holds them
past their hold window, and each one reaches its receiver once, however slow the receiver."""

import json
import time

import pytest
from django.db import transaction
from django.utils import timezone

from approvals.jobs import apply_queue
from approvals.models import FollowUp, FollowUpStatus, Proposal, ProposalStatus, StopScope
from approvals.stops.services import stop_engage, stop_release
from audit.models import AuditEvent
from audit.services import Actor
from tests.helpers.factories import CustomerFactory, ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.receiver import Receiver
from tests.helpers.worker import wait_until

pytestmark = pytest.mark.worker


def approved_by_a_lead(**kwargs) -> Proposal:  # type: ignore[no-untyped-def]
    """Approved by a person, then queued for the worker as every service that approves does."""
    lead = UserFactory(username="lead")
    proposal = ProposalFactory(status=ProposalStatus.APPROVED, decided_by=lead, decided_at=timezone.now(), **kwargs)
    with transaction.atomic():
        apply_queue(proposal_ids=[proposal.pk])
    return proposal


def statuses() -> set[str]:
    return set(FollowUp.objects.values_list("status", flat=True))


def test_a_stop_engaged_after_apply_holds_follow_ups_past_their_hold_and_release_sends_each_once(start_worker):
    hold = 3
    worker = start_worker(concurrency=1, beat=True, env={"COUNTERSIGN_FOLLOWUP_HOLD_SECONDS": str(hold)})
    ops = UserFactory(username="ops")
    customer = CustomerFactory(email="dana@example.com")
    with Receiver(18541) as hook:
        proposal = approved_by_a_lead(
            workflow=WorkflowFactory(webhook_hosts=["127.0.0.1:18541"]),
            record_id=customer.record_id,
            follow_ups=[
                {"kind": "email_customer", "params": {"template": "address-confirmed"}},
                {"kind": "webhook", "params": {"url": f"{hook.url}/shipping", "payload": {"ticket": "T-881"}}},
            ],
        )
        wait_until(lambda: Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.APPLIED, timeout=30)
        switch = stop_engage(scope=StopScope.GLOBAL, reason="Holding everything for a check", actor=Actor.user(ops))
        assert statuses() == {FollowUpStatus.HELD}
        wait_until(
            lambda: all(row.wait_reason for row in FollowUp.objects.all()),
            timeout=30,
            what="the follow-ups to say the stop holds them",
        )
        time.sleep(hold)  # well past the hold window, with beat polling the outbox every second
        assert hook.received == []
        assert not worker.mail_dir.exists() or list(worker.mail_dir.iterdir()) == []
        assert statuses() == {FollowUpStatus.HELD}
        assert {row.attempts for row in FollowUp.objects.all()} == {0}

        stop_release(switch=switch, user=ops)
        wait_until(lambda: statuses() == {FollowUpStatus.SENT}, timeout=30, what="the follow-ups after release")
        time.sleep(2)  # a second send would show by now
        [call] = hook.received
    assert json.loads(call.body)["payload"] == {"ticket": "T-881"}
    assert len(list(worker.mail_dir.iterdir())) == 1
    assert AuditEvent.objects.filter(action="followup.sent", proposal_id=proposal.pk).count() == 2


def test_a_slow_webhook_receiver_with_a_short_claim_gets_each_follow_up_exactly_once(start_worker):
    settings = {"COUNTERSIGN_FOLLOWUP_HOLD_SECONDS": "0", "COUNTERSIGN_FOLLOWUP_CLAIM_SECONDS": "0.5"}
    start_worker(concurrency=2, beat=True, env=settings)
    workflow = WorkflowFactory(webhook_hosts=["127.0.0.1:18542"])
    with Receiver(18542, delay=2) as hook:  # each answer takes four claims' time (the timeout is 3 s)
        for n in range(3):
            approved_by_a_lead(
                workflow=workflow, follow_ups=[{"kind": "webhook", "params": {"url": f"{hook.url}/hook/{n}"}}]
            )
        wait_until(
            lambda: FollowUp.objects.count() == 3 and statuses() == {FollowUpStatus.SENT},
            timeout=60,
            what="every follow-up sent",
        )
        time.sleep(3)  # a second delivery would have arrived by now
        paths = sorted(call.path for call in hook.received)
        keys = sorted(call.headers["Idempotency-Key"] for call in hook.received)
    assert paths == ["/hook/0", "/hook/1", "/hook/2"]
    assert keys == sorted(str(pk) for pk in FollowUp.objects.values_list("pk", flat=True))
    assert AuditEvent.objects.filter(action="followup.sent").count() == 3
    assert set(FollowUp.objects.values_list("attempts", flat=True)) == {1}
