"""The workflow's file as it stands now gates every write, not only intake: a policy narrowed after a
proposal came in stops the decision and the worker, naming the field."""

from unittest import mock

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.applying.services import Outcome, proposal_apply, proposals_apply
from approvals.models import FieldPolicy, FollowUp, ProposalStatus, Workflow
from approvals.review.services import proposal_approve, proposal_reject
from approvals.workflows.selectors import write_policies
from audit.models import AuditEvent
from core.errors import NotAllowed
from records.models import Change, Customer
from tests.helpers.factories import CustomerFactory, GroupFactory, ProposalFactory, UserFactory, WorkflowFactory

WORKER = "worker@test/1"


def narrow(workflow: Workflow, field: str, access: str | None) -> None:
    """What `load_workflows` does when the file no longer gives the workflow `field` (or gives less)."""
    policies = FieldPolicy.objects.filter(workflow=workflow, record_type="customer", field=field)
    if access is None:
        policies.delete()
    else:
        policies.update(access=access)


def approved_by_a_lead(**kwargs):  # type: ignore[no-untyped-def]
    lead = UserFactory(username="lead")
    return ProposalFactory(status=ProposalStatus.APPROVED, decided_by=lead, decided_at=timezone.now(), **kwargs)


def assert_failed_unwritten(proposal, customer, old: dict, reason: str) -> None:  # type: ignore[no-untyped-def]
    proposal.refresh_from_db()
    assert (proposal.status, proposal.last_error) == (ProposalStatus.FAILED, reason)
    customer.refresh_from_db()
    assert {name: getattr(customer, name) for name in old} == old
    assert not Change.objects.filter(proposal_id=proposal.pk).exists()
    event = AuditEvent.objects.get(action="proposal.failed", proposal_id=proposal.pk)
    assert (event.reason, event.details, event.actor_label) == (reason, {"refused_by": "policy"}, WORKER)


@pytest.mark.parametrize("access", [None, "read"])
def test_a_field_taken_from_the_workflow_after_approval_is_never_written(db, access):
    customer = CustomerFactory(shipping_address="4 Old Mill Lane, Leith")
    proposal = approved_by_a_lead(record_id=customer.record_id)
    narrow(proposal.workflow, "shipping_address", access)
    result = proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    reason = f"workflow {proposal.workflow.slug} may no longer change customer.shipping_address"
    assert (result.outcome, result.detail) == (Outcome.FAILED, reason)
    assert_failed_unwritten(proposal, customer, {"shipping_address": "4 Old Mill Lane, Leith"}, reason)


def test_an_action_taken_from_the_workflow_after_approval_is_never_written(db):
    customer = CustomerFactory()
    proposal = approved_by_a_lead(record_id=customer.record_id, action="archive", changes={}, base={})
    Workflow.objects.filter(pk=proposal.workflow_id).update(actions=["update"])
    result = proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    reason = f"workflow {proposal.workflow.slug} may no longer archive records"
    assert result.outcome == Outcome.FAILED
    assert_failed_unwritten(proposal, customer, {"archived_at": None}, reason)


def test_a_write_approved_without_review_waits_for_no_one_once_the_field_needs_a_person(db):
    customer = CustomerFactory(priority="normal")
    unreviewed = ProposalFactory(
        status=ProposalStatus.APPROVED,
        record_id=customer.record_id,
        changes={"priority": "high"},
        base={"priority": "normal"},
    )
    assert unreviewed.decided_by is None  # intake let it through on `write`
    narrow(unreviewed.workflow, "priority", "suggest")
    reason = (
        f"customer.priority now needs a person's approval (workflow {unreviewed.workflow.slug} may only suggest it)"
    )
    assert proposal_apply(proposal_id=unreviewed.pk, worker=WORKER).outcome == Outcome.FAILED
    assert_failed_unwritten(unreviewed, customer, {"priority": "normal"}, reason)

    reviewed = approved_by_a_lead(
        workflow=unreviewed.workflow,
        record_id=customer.record_id,
        changes={"priority": "high"},
        base={"priority": "normal"},
    )
    assert proposal_apply(proposal_id=reviewed.pk, worker=WORKER).outcome == Outcome.APPLIED
    customer.refresh_from_db()
    assert customer.priority == "high"


def test_an_unreviewed_write_asking_for_a_follow_up_is_never_written_by_the_worker(db):
    customer = CustomerFactory(priority="normal")
    webhook = {"kind": "webhook", "params": {"url": "https://hooks.example.com/a"}}
    unreviewed = ProposalFactory(
        status=ProposalStatus.APPROVED,
        record_id=customer.record_id,
        changes={"priority": "high"},
        base={"priority": "normal"},
        follow_ups=[webhook],
        workflow=WorkflowFactory(webhook_hosts=["hooks.example.com"]),
        policy=False,  # as if it had come in approved without review: no person decided it
    )
    FieldPolicy.objects.create(workflow=unreviewed.workflow, record_type="customer", field="priority", access="write")
    reason = f"a proposal with follow-ups needs a person's approval (workflow {unreviewed.workflow.slug})"
    assert proposal_apply(proposal_id=unreviewed.pk, worker=WORKER).outcome == Outcome.FAILED
    assert_failed_unwritten(unreviewed, customer, {"priority": "normal"}, reason)
    assert not FollowUp.objects.exists()


def test_a_chunk_reads_the_policies_once_and_fails_only_what_they_refuse(db):
    allowed, narrowed = WorkflowFactory(), WorkflowFactory()
    customers = [CustomerFactory(shipping_address="4 Old Mill Lane, Leith") for _ in range(4)]
    proposals = [
        approved_by_a_lead(workflow=workflow, record_id=customer.record_id)
        for workflow, customer in zip([allowed, narrowed, allowed, narrowed], customers, strict=True)
    ]
    narrow(narrowed, "shipping_address", "read")
    results = proposals_apply(proposal_ids=[p.pk for p in proposals], worker=WORKER)
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.FAILED, Outcome.APPLIED, Outcome.FAILED]
    assert [c.shipping_address for c in Customer.objects.order_by("pk")] == [
        "12 Harbour Road, Leith",
        "4 Old Mill Lane, Leith",
        "12 Harbour Road, Leith",
        "4 Old Mill Lane, Leith",
    ]
    with mock.patch("approvals.applying.services.write_policies", wraps=write_policies) as read:
        more = [approved_by_a_lead(workflow=allowed, record_id=c.record_id) for c in customers[:2]]
        Customer.objects.filter(record_id__in=[c.record_id for c in customers[:2]]).update(
            shipping_address="4 Old Mill Lane, Leith"
        )
        proposals_apply(proposal_ids=[p.pk for p in more], worker=WORKER)
    assert read.call_count == 1


def test_a_lead_cannot_approve_what_the_workflow_may_no_longer_change_but_can_reject_it(queued, db):
    lead = UserFactory(username="lead")
    leads = GroupFactory()
    workflow = WorkflowFactory(approver_group=leads)
    leads.user_set.add(lead)
    assign_perm("approvals.review_workflow", leads, workflow)
    proposal = ProposalFactory(workflow=workflow)
    narrow(workflow, "shipping_address", "read")
    message = f"workflow {workflow.slug} may no longer change customer.shipping_address; reject proposal {proposal.pk}"
    with pytest.raises(NotAllowed) as refused:
        proposal_approve(proposal=proposal, reviewer=lead)
    assert refused.value.message == message
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING
    event = AuditEvent.objects.get(action="proposal.decision_refused")
    assert (event.reason, event.details["refusal"]) == (message, "policy")
    proposal_reject(proposal=proposal, reviewer=lead, reason="The workflow may no longer change addresses")
    assert queued == []
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.REJECTED
