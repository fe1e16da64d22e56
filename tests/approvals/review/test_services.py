import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from approvals import jobs
from approvals.models import ProposalApproval, ProposalStatus
from approvals.review.groups import GroupKey, batch_groups
from approvals.review.services import (
    proposal_approve,
    proposal_claim,
    proposal_group_decide,
    proposal_reject,
)
from audit.models import AuditEvent
from core.errors import InvalidTransition, NotAllowed, ValidationFailed
from records.models import Customer
from tests.helpers.factories import BatchFactory, CustomerFactory, ProposalFactory, UserFactory
from tests.helpers.queued import Queued


def actions() -> list[str]:
    """What happened to proposals, oldest first (the fixtures' people joining their groups aside)."""
    return list(
        AuditEvent.objects.exclude(action__startswith="access.").order_by("id").values_list("action", flat=True)
    )


def refusals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="proposal.decision_refused").order_by("id"))


def test_approving_moves_the_proposal_records_it_and_queues_the_apply_on_commit(
    queued, workflow, lead, django_capture_on_commit_callbacks
):
    proposal = ProposalFactory(workflow=workflow, requested_by="agent")
    with django_capture_on_commit_callbacks() as callbacks:
        outcome = proposal_approve(proposal=proposal, reviewer=lead, note="matches ticket T-881", expected_revision=1)
    assert queued == []  # nothing is sent before the decision commits
    assert len(callbacks) == 1
    callbacks[0]()
    assert queued == [Queued(jobs.APPLY, [[proposal.pk]])]

    proposal.refresh_from_db()
    assert outcome.approved
    assert proposal.status == ProposalStatus.APPROVED
    assert proposal.revision == 2
    assert proposal.decided_by == lead
    assert proposal.approved_at == proposal.decided_at is not None
    assert proposal.decision_note == "matches ticket T-881"
    assert list(proposal.approvals.values_list("user__username", flat=True)) == ["lead"]
    event = AuditEvent.objects.get(action="proposal.approved")
    assert (event.actor_kind, event.actor_label) == ("user", "lead")
    assert event.approver_label == "Dana Lee"
    assert event.decided_at is not None and abs(event.decided_at - proposal.decided_at) < timedelta(milliseconds=1)
    assert (event.model_name, event.model_version, event.prompt_version) == ("gpt-x", "2026-10-01", "address-update@7")
    assert event.workflow_slug == "address-updates"
    assert (event.record_type, event.record_id, event.proposal_id) == ("customer", proposal.record_id, proposal.pk)
    assert event.reason == "matches ticket T-881"
    assert event.details["approvers"] == ["lead"]


def test_rejecting_needs_a_reason_and_is_recorded(queued, workflow, lead, django_capture_on_commit_callbacks):
    proposal = ProposalFactory(workflow=workflow)
    with pytest.raises(ValidationFailed) as refused:
        proposal_reject(proposal=proposal, reviewer=lead, reason="  ")
    assert refused.value.field == "reason"
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING
    assert actions() == []

    with django_capture_on_commit_callbacks(execute=True):
        proposal_reject(proposal=proposal, reviewer=lead, reason="the ticket asks for a different address")
    assert queued == []
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.REJECTED
    assert proposal.decided_by == lead
    assert proposal.decision_note == "the ticket asks for a different address"
    event = AuditEvent.objects.get(action="proposal.rejected")
    assert event.reason == "the ticket asks for a different address"
    assert event.decided_at is not None
    assert event.actor_label == "lead"
    # The approver column (and so every export of it) names only who approved.
    assert event.approver_label == ""
    assert event.details["rejected_by"] == "Dana Lee"


@pytest.mark.parametrize("how", ["requested_by", "requested_by_user", "batch"])
def test_the_requester_can_never_decide(queued, workflow, lead, how):
    if how == "requested_by":
        proposal = ProposalFactory(workflow=workflow, requested_by="lead")
    elif how == "requested_by_user":
        proposal = ProposalFactory(workflow=workflow, requested_by="", requested_by_user=lead)
    else:
        batch = BatchFactory(workflow=workflow, requested_by="lead")
        proposal = ProposalFactory(workflow=workflow, batch=batch, requested_by="maria.lopez")
    with pytest.raises(NotAllowed, match="someone else must decide it"):
        proposal_approve(proposal=proposal, reviewer=lead)
    with pytest.raises(NotAllowed, match="someone else must decide it"):
        proposal_reject(proposal=proposal, reviewer=lead, reason="I changed my mind")
    assert queued == []
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING
    assert proposal.decided_by is None
    assert [(e.details["attempted"], e.details["refusal"]) for e in refusals()] == [
        ("approve", "requester"),
        ("reject", "requester"),
    ]
    assert refusals()[0].actor_label == "lead"
    assert refusals()[0].proposal_id == proposal.pk


@pytest.mark.parametrize("recorded", ["LEAD", "lead\u200b", "ｌｅａｄ", "\u202dLead", "le\u00adad"])
def test_the_requester_cannot_decide_whatever_spelling_of_their_name_was_stored(queued, workflow, lead, recorded):
    # Intake now refuses such names and stores the account; these rows are as an older intake left them.
    asked = ProposalFactory(workflow=workflow, requested_by=recorded, requested_by_user=None)
    started = ProposalFactory(workflow=workflow, batch=BatchFactory(workflow=workflow, requested_by=recorded))
    with pytest.raises(NotAllowed, match="You asked for this change, so someone else must decide it"):
        proposal_approve(proposal=asked, reviewer=lead)
    with pytest.raises(NotAllowed, match="You started the batch it belongs to"):
        proposal_approve(proposal=started, reviewer=lead)
    assert queued == []
    assert [(e.proposal_id, e.details["refusal"]) for e in refusals()] == [
        (asked.pk, "requester"),
        (started.pk, "requester"),
    ]


def test_the_database_refuses_a_requester_as_decider(workflow, lead):
    proposal = ProposalFactory(workflow=workflow, requested_by_user=lead)
    proposal.decided_by = lead
    with pytest.raises(IntegrityError), transaction.atomic():
        proposal.save(update_fields=["decided_by"])


def test_a_second_decision_is_refused_and_never_applied_twice(
    queued, workflow, lead, second_lead, django_capture_on_commit_callbacks
):
    proposal = ProposalFactory(workflow=workflow)
    with django_capture_on_commit_callbacks(execute=True):
        proposal_approve(proposal=proposal, reviewer=lead)
        with pytest.raises(InvalidTransition, match="already approved by Dana Lee"):
            proposal_approve(proposal=proposal, reviewer=second_lead)
        with pytest.raises(InvalidTransition, match="already approved"):
            proposal_reject(proposal=proposal, reviewer=second_lead, reason="too late")
    assert len(queued) == 1
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.APPROVED
    assert proposal.decided_by == lead
    assert actions().count("proposal.approved") == 1
    assert [e.details["refusal"] for e in refusals()] == ["already_decided", "already_decided"]
    assert refusals()[0].actor_label == "sam"


def test_a_decision_on_a_proposal_that_changed_since_it_was_drawn_is_refused(workflow, lead):
    proposal = ProposalFactory(workflow=workflow, revision=3)
    with pytest.raises(InvalidTransition, match="changed since you opened it"):
        proposal_approve(proposal=proposal, reviewer=lead, expected_revision=2)
    with pytest.raises(InvalidTransition, match="changed since you opened it"):
        proposal_reject(proposal=proposal, reviewer=lead, reason="not now", expected_revision=2)
    proposal.refresh_from_db()
    assert (proposal.status, proposal.revision) == (ProposalStatus.PENDING, 3)
    assert [e.details["refusal"] for e in refusals()] == ["changed", "changed"]


def test_a_decision_without_the_review_permission_is_refused(workflow):
    outsider = UserFactory(username="mallory")
    proposal = ProposalFactory(workflow=workflow)
    with pytest.raises(NotAllowed, match="may not review proposals of the workflow address-updates"):
        proposal_approve(proposal=proposal, reviewer=outsider)
    with pytest.raises(NotAllowed):
        proposal_reject(proposal=proposal, reviewer=outsider, reason="not mine")
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING
    assert [e.details["refusal"] for e in refusals()] == ["no_permission", "no_permission"]
    assert refusals()[0].actor_label == "mallory"


def test_two_people_must_approve_a_two_person_field(
    queued, workflow, lead, second_lead, django_capture_on_commit_callbacks
):
    workflow.two_person_fields = ["refund_status"]
    workflow.save()
    proposal = ProposalFactory(
        workflow=workflow,
        record_type="order",
        record_id="ORD-1",
        changes={"refund_status": "approved"},
        base={"refund_status": "requested"},
    )
    with django_capture_on_commit_callbacks(execute=True):
        first = proposal_approve(proposal=proposal, reviewer=lead, expected_revision=1)
        assert first.first_of_two and not first.approved
        proposal.refresh_from_db()
        assert proposal.status == ProposalStatus.PENDING
        assert proposal.revision == 2
        assert queued == []

        with pytest.raises(InvalidTransition, match="second must come from someone else"):
            proposal_approve(proposal=proposal, reviewer=lead, expected_revision=2)

        second = proposal_approve(proposal=proposal, reviewer=second_lead, expected_revision=2)
    assert second.approved
    assert queued == [Queued(jobs.APPLY, [[proposal.pk]])]
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.APPROVED
    assert proposal.decided_by == second_lead
    assert list(ProposalApproval.objects.filter(proposal=proposal).values_list("user__username", flat=True)) == [
        "lead",
        "sam",
    ]
    assert actions() == ["proposal.approval_recorded", "proposal.decision_refused", "proposal.approved"]
    approved = AuditEvent.objects.get(action="proposal.approved")
    assert approved.approver_label == "Dana Lee, Sam Okafor"
    assert approved.details["approvers"] == ["lead", "sam"]


def test_two_people_must_approve_a_two_person_action(workflow, lead, second_lead):
    workflow.two_person_actions = ["merge", "delete"]
    workflow.save()
    survivor = CustomerFactory()
    proposal = ProposalFactory(workflow=workflow, action="merge", changes={}, base={}, merge_into=survivor.record_id)
    assert proposal_approve(proposal=proposal, reviewer=lead).first_of_two
    assert proposal_approve(proposal=proposal, reviewer=second_lead).approved
    update = ProposalFactory(workflow=workflow)
    assert proposal_approve(proposal=update, reviewer=lead).approved


def test_one_rejection_ends_a_two_person_proposal(workflow, lead, second_lead):
    workflow.two_person_actions = ["delete"]
    workflow.save()
    proposal = ProposalFactory(workflow=workflow, action="delete", changes={}, base={})
    proposal_approve(proposal=proposal, reviewer=lead)
    proposal_reject(proposal=proposal, reviewer=second_lead, reason="the customer still has open orders")
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.REJECTED


def test_a_claim_marks_who_is_looking_until_it_expires_or_a_decision(workflow, lead, second_lead, agent):
    proposal = ProposalFactory(workflow=workflow)
    other = ProposalFactory(workflow=workflow)
    claimed = proposal_claim(proposal=proposal, reviewer=lead)
    assert claimed.claimed_by == lead
    assert claimed.claimed_until is not None and claimed.claimed_until > timezone.now() + timedelta(minutes=4)

    held = proposal_claim(proposal=proposal, reviewer=second_lead)
    assert held.claimed_by == lead  # someone else's live claim stands

    proposal_claim(proposal=other, reviewer=lead)  # one claim at a time
    proposal.refresh_from_db()
    assert proposal.claimed_by is None

    proposal_claim(proposal=proposal, reviewer=second_lead)
    proposal.__class__.objects.filter(pk=proposal.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert proposal_claim(proposal=proposal, reviewer=lead).claimed_by == lead  # the expired claim gave way

    proposal_approve(proposal=proposal, reviewer=lead)
    proposal.refresh_from_db()
    assert (proposal.claimed_by, proposal.claimed_until) == (None, None)
    with pytest.raises(InvalidTransition):
        proposal_claim(proposal=proposal, reviewer=second_lead)

    own = ProposalFactory(workflow=workflow, requested_by="sam")
    with pytest.raises(NotAllowed):
        proposal_claim(proposal=own, reviewer=second_lead)
    assert proposal.revision == 2  # claims never make a drawn page stale


def _batch_of(workflow, size: int, **extra):  # type: ignore[no-untyped-def]
    batch = BatchFactory(workflow=workflow, requested_by="agent")
    proposals = [ProposalFactory(workflow=workflow, batch=batch, **extra) for _ in range(size)]
    return batch, proposals


def test_a_matched_group_is_approved_one_by_one_and_never_mixes_stale_and_fresh(
    queued, workflow, lead, django_capture_on_commit_callbacks
):
    batch, fresh = _batch_of(workflow, 3)
    stale = ProposalFactory(workflow=workflow, batch=batch)
    Customer.objects.filter(record_id=stale.record_id).update(shipping_address="9 New Street, Leith")
    other_fields = ProposalFactory(
        workflow=workflow, batch=batch, changes={"phone": "+44 7700 900999"}, base={"phone": "+44 7700 900123"}
    )
    groups = batch_groups(user=lead, batch=batch)
    assert [(g.key.fields, g.count) for g in groups.groups] == [(("shipping_address",), 3), (("phone",), 1)]
    assert groups.stale_ids == [stale.pk]
    key = GroupKey.of(fresh[0])

    with django_capture_on_commit_callbacks(execute=True):
        result = proposal_group_decide(
            batch=batch, key=key, reviewer=lead, approve=True, expected_ids=[p.pk for p in fresh], note="checked"
        )
    assert sorted(result.decided) == sorted(p.pk for p in fresh)
    assert queued == [Queued(jobs.APPLY, [[p.pk for p in fresh]])]
    statuses = dict(batch.proposals.values_list("id", "status"))
    assert {statuses[p.pk] for p in fresh} == {"approved"}
    assert statuses[stale.pk] == statuses[other_fields.pk] == "pending"
    events = AuditEvent.objects.filter(action="proposal.approved").order_by("id")
    assert [e.proposal_id for e in events] == [p.pk for p in fresh]
    assert all(e.details["group"] == {"batch": batch.pk, "size": 3} for e in events)


def test_a_group_that_changed_since_it_was_shown_is_refused_whole(queued, workflow, lead):
    batch, proposals = _batch_of(workflow, 3)
    key = GroupKey.of(proposals[0])
    Customer.objects.filter(record_id=proposals[1].record_id).update(shipping_address="moved again")
    with pytest.raises(InvalidTransition, match="held 3 proposals and now holds 2"):
        proposal_group_decide(batch=batch, key=key, reviewer=lead, approve=True, expected_ids=[p.pk for p in proposals])
    assert queued == []
    assert set(batch.proposals.values_list("status", flat=True)) == {"pending"}
    assert [e.details["refusal"] for e in refusals()] == ["changed"]


def test_rejecting_a_group_needs_a_reason_and_the_batch_starter_cannot(workflow, lead, agent):
    batch, proposals = _batch_of(workflow, 2)
    key = GroupKey.of(proposals[0])
    ids = [p.pk for p in proposals]
    with pytest.raises(ValidationFailed):
        proposal_group_decide(batch=batch, key=key, reviewer=lead, approve=False, expected_ids=ids)
    result = proposal_group_decide(
        batch=batch, key=key, reviewer=lead, approve=False, expected_ids=ids, reason="wrong prompt version"
    )
    assert sorted(result.decided) == sorted(ids)
    assert set(batch.proposals.values_list("status", flat=True)) == {"rejected"}
    assert AuditEvent.objects.filter(action="proposal.rejected").count() == 2

    own_batch = BatchFactory(workflow=workflow, requested_by="lead")
    ProposalFactory(workflow=workflow, batch=own_batch)
    groups = batch_groups(user=lead, batch=own_batch)
    assert groups.groups == [] and groups.own_count == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_leads_approving_at_once_decide_it_exactly_once(queued, workflow, lead, second_lead):
    proposal = ProposalFactory(workflow=workflow)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(user):  # type: ignore[no-untyped-def]
        try:
            barrier.wait()
            proposal_approve(proposal=proposal, reviewer=user, expected_revision=1)
            outcomes.append("approved")
        except InvalidTransition:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(user,)) for user in (lead, second_lead)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["approved", "refused"]
    assert len(queued) == 1
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.APPROVED
    assert AuditEvent.objects.filter(action="proposal.approved").count() == 1
    assert AuditEvent.objects.filter(action="proposal.decision_refused").count() == 1
