"""Follow-ups obey the stop switch: while a global, workflow or batch stop covers their proposal they
are neither claimed nor sent, they say why they wait, and they run once after the release."""

from datetime import timedelta
from uuid import UUID

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from approvals.applying.followups import followup_run, followups_claim_due, followups_run_due
from approvals.applying.services import proposal_apply
from approvals.models import FollowUp, FollowUpStatus, Proposal, ProposalStatus, StopScope, StopSwitch
from approvals.stops.services import stop_engage, stop_release
from approvals.undo.services import undo_change
from audit.models import AuditEvent
from audit.services import Actor
from records.models import Change
from tests.helpers.factories import BatchFactory, CustomerFactory, ProposalFactory, UserFactory

WORKER = "worker@test/1"
EMAIL = {"kind": "email_customer", "params": {"template": "address-confirmed"}}
REASON = "Checking a sample of the sweep before anything more goes out"


def applied_in_a_batch() -> tuple[Proposal, UUID]:
    batch = BatchFactory(name="nightly sweep")
    customer = CustomerFactory(email="dana@example.com")
    proposal = ProposalFactory(
        status=ProposalStatus.APPROVED,
        workflow=batch.workflow,
        batch=batch,
        record_id=customer.record_id,
        follow_ups=[EMAIL],
    )
    result = proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    assert result.change_id is not None
    return proposal, result.change_id


def engage(scope: str, proposal: Proposal) -> StopSwitch:
    return stop_engage(
        scope=scope,
        reason=REASON,
        actor=Actor.user(UserFactory(username="ops", first_name="Olu", last_name="Ade")),
        workflow=proposal.workflow if scope == StopScope.WORKFLOW else None,
        batch=proposal.batch if scope == StopScope.BATCH else None,
    )


def after(minutes: int):  # type: ignore[no-untyped-def]
    return time_machine.travel(timezone.now() + timedelta(minutes=minutes), tick=False)


@pytest.mark.parametrize("scope", [StopScope.GLOBAL, StopScope.WORKFLOW, StopScope.BATCH])
def test_a_stop_holds_a_due_follow_up_until_its_release_then_it_is_sent_once(db, scope):
    proposal, _ = applied_in_a_batch()
    switch = engage(scope, proposal)
    with after(minutes=11):  # past the 10-minute hold an undo has
        assert followups_run_due(worker=WORKER) == 0
        assert followups_run_due(worker=WORKER) == 0
    assert mail.outbox == []
    row = FollowUp.objects.get()
    assert (row.status, row.attempts) == (FollowUpStatus.HELD, 0)
    assert row.wait_reason.startswith(f"held by the stop switch: stopped ({switch.label}) by ops at ")
    assert row.wait_reason.endswith(REASON)

    stop_release(switch=switch, user=UserFactory(username="ops"))
    with after(minutes=12):
        assert followups_run_due(worker=WORKER) == 1
        assert followups_run_due(worker=WORKER) == 0
    [message] = mail.outbox
    assert message.to == ["dana@example.com"]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.wait_reason) == (FollowUpStatus.SENT, 1, "")
    assert AuditEvent.objects.filter(action="followup.sent").count() == 1


def test_a_stop_over_another_workflow_holds_nothing_here(db):
    applied_in_a_batch()
    other, _ = applied_in_a_batch()
    engage(StopScope.WORKFLOW, other)
    with after(minutes=11):
        assert followups_run_due(worker=WORKER) == 1
    assert len(mail.outbox) == 1
    assert FollowUp.objects.get(proposal=other).status == FollowUpStatus.HELD


def test_a_stop_engaged_after_the_claim_puts_the_follow_up_back_to_wait(db):
    proposal, _ = applied_in_a_batch()
    with after(minutes=11):
        claim = followups_claim_due(worker=WORKER)
        assert len(claim.ids) == 1
        switch = engage(StopScope.GLOBAL, proposal)
        assert followup_run(followup_id=claim.ids[0], claim=claim.token, worker=WORKER) is None
    assert mail.outbox == []
    row = FollowUp.objects.get()
    assert (row.status, row.attempts, row.claim) == (FollowUpStatus.HELD, 0, None)
    assert "stopped (everything) by ops" in row.wait_reason
    stop_release(switch=switch, user=UserFactory(username="ops"))
    with after(minutes=12):
        assert followups_run_due(worker=WORKER) == 1
    assert len(mail.outbox) == 1


def test_undo_still_cancels_a_follow_up_a_stop_holds(db):
    proposal, change_id = applied_in_a_batch()
    engage(StopScope.BATCH, proposal)
    with after(minutes=11):
        followups_run_due(worker=WORKER)
    assert FollowUp.objects.get().wait_reason
    undo_change(change=Change.objects.get(pk=change_id), actor=Actor.system("test"), reason="Wrong address")
    assert FollowUp.objects.get().status == FollowUpStatus.CANCELLED
    assert AuditEvent.objects.filter(action="followup.cancelled", change_id=change_id).count() == 1


def test_the_trace_says_why_a_follow_up_waits(client, db):
    proposal, change_id = applied_in_a_batch()
    engage(StopScope.GLOBAL, proposal)
    with after(minutes=11):
        followups_run_due(worker=WORKER)
    client.force_login(proposal.workflow.owner)
    html = client.get(reverse("trace-change", args=[change_id])).content.decode()
    assert "waiting, held by the stop switch: stopped (everything) by ops at" in html
