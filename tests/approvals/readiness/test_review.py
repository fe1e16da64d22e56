"""The five-step review's rules: who runs it, the order of its steps, and the two-person sign-off."""

import pytest
from django.utils import timezone

from approvals.models import FieldPolicy, ReadinessReview, ReviewSignature
from approvals.readiness.review import (
    review_decide,
    review_fields_mark,
    review_sign,
    review_start,
    review_step_tick,
    review_walk_choose,
)
from approvals.readiness.review_selectors import review_fields
from audit.models import AuditEvent
from core.errors import InvalidTransition, NotAllowed, ValidationFailed
from records.store import RecordRef
from tests.approvals.readiness.conftest import Team, file_marks, walk_every_step
from tests.helpers.factories import ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.trail import apply_update, revert


def _trail(workflow_slug: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action__startswith="review.", workflow_slug=workflow_slug).order_by("id"))


def test_the_whole_walk_is_signed_off_by_the_owner_and_another_and_every_step_is_in_the_trail(team: Team):
    review = walk_every_step(team, shipping_address="read")
    review = review_decide(review=review, user=team.ops, decision="ready", actions="Watch the canary for a week")
    review = review_sign(review=review, user=team.ops)
    assert review.signed_off_at is None
    before = timezone.now()
    review = review_sign(review=review, user=team.owner)

    stored = ReadinessReview.objects.get(pk=review.pk)
    assert stored.signed_off_at is not None and stored.signed_off_at >= before
    assert stored.decision == "ready" and stored.decided_by == team.ops
    assert {signature.user.username for signature in stored.signatures.all()} == {"ops", "owner"}
    assert stored.steps["walk.rollback"]["by"] == "sam" and stored.steps["walk.rollback"]["name"] == "Sam Okafor"
    assert stored.steps["tasks"]["note"] == "Only address-updates touches customers"
    assert stored.walk_change_id == team.change.id
    assert stored.field_marks["customer.shipping_address"] == {"file": "suggest", "review": "read"}

    events = _trail("address-updates")
    assert [event.action for event in events] == [
        "review.started",
        "review.step_ticked",
        "review.fields_marked",
        "review.step_ticked",
        "review.change_chosen",
        "review.step_ticked",
        "review.step_ticked",
        "review.step_ticked",
        "review.step_ticked",
        "review.decided",
        "review.signed",
        "review.signed",
        "review.signed_off",
    ]
    assert [event.actor_label for event in events if event.action == "review.signed"] == ["ops", "owner"]
    signed_off = events[-1]
    assert signed_off.details["signed_by"] == ["Olive Grant", "Priya Nair"]
    assert signed_off.approver_label == "Olive Grant and Priya Nair"
    assert signed_off.details["review_id"] == review.pk
    assert events[2].details["differences"] == ["customer.shipping_address: file says suggest, review says read"]
    assert events[4].change_id == team.change.id and events[4].record_id == team.change.record_id


def test_the_same_person_signing_twice_is_refused(team: Team):
    review = review_decide(review=walk_every_step(team), user=team.owner, decision="ready", actions="")
    review_sign(review=review, user=team.owner)
    with pytest.raises(InvalidTransition, match="already; the second signature must be another person's"):
        review_sign(review=review, user=team.owner)
    assert ReviewSignature.objects.filter(review=review).count() == 1
    assert ReadinessReview.objects.get(pk=review.pk).signed_off_at is None


def test_two_people_who_are_not_the_owner_leave_it_waiting_for_the_owner(team: Team):
    review = review_decide(review=walk_every_step(team), user=team.ops, decision="ready", actions="")
    review_sign(review=review, user=team.ops)
    review_sign(review=review, user=team.staff)
    assert ReadinessReview.objects.get(pk=review.pk).signed_off_at is None
    assert not AuditEvent.objects.filter(action="review.signed_off").exists()

    review_sign(review=review, user=team.owner)
    assert ReadinessReview.objects.get(pk=review.pk).signed_off_at is not None
    assert AuditEvent.objects.get(action="review.signed_off").details["signed_by"] == [
        "Olive Grant",
        "Priya Nair",
        "Sam Okafor",
    ]


def test_deciding_before_every_step_is_done_is_refused_naming_what_is_left(team: Team):
    review = review_start(workflow=team.workflow, user=team.owner)
    review_step_tick(review=review, user=team.owner, step="tasks")
    with pytest.raises(InvalidTransition) as refused:
        review_decide(review=review, user=team.owner, decision="ready", actions="")
    assert refused.value.message == (
        "finish the steps before deciding: step 2 (fields marked), step 3 (retention checked), step 4 (approval), "
        "step 4 (write), step 4 (trace), step 4 (rollback) not done yet"
    )
    assert ReadinessReview.objects.get(pk=review.pk).decision == ""


def test_not_ready_needs_actions_and_is_signed_off_like_ready(team: Team):
    review = walk_every_step(team)
    with pytest.raises(ValidationFailed) as refused:
        review_decide(review=review, user=team.owner, decision="not_ready", actions="  ")
    assert refused.value.problems == [("actions", "say what must be done before the workflow is ready")]
    review = review_decide(
        review=review, user=team.owner, decision="not_ready", actions="Add an error_log rule; rerun the drill"
    )
    review_sign(review=review, user=team.owner)
    review_sign(review=review, user=team.staff)
    stored = ReadinessReview.objects.get(pk=review.pk)
    assert stored.decision == "not_ready" and stored.signed_off_at is not None
    signed_off = AuditEvent.objects.get(action="review.signed_off")
    assert signed_off.new_value == "not_ready" and signed_off.reason == "Add an error_log rule; rerun the drill"


def test_signing_before_deciding_is_refused(team: Team):
    review = walk_every_step(team)
    with pytest.raises(InvalidTransition, match=r"decide ready or not ready \(step 5\) before signing"):
        review_sign(review=review, user=team.owner)
    assert not ReviewSignature.objects.exists()


def test_a_decision_stands_once_someone_has_signed_it(team: Team):
    review = review_decide(review=walk_every_step(team), user=team.ops, decision="ready", actions="")
    review_sign(review=review, user=team.ops)
    with pytest.raises(InvalidTransition, match="Priya Nair has signed this decision; it can no longer change"):
        review_decide(review=review, user=team.owner, decision="not_ready", actions="Wait")


def test_rollback_is_ticked_only_once_the_change_was_undone(team: Team):
    review = review_start(workflow=team.workflow, user=team.owner)
    with pytest.raises(ValidationFailed, match="choose the applied change to walk through first"):
        review_step_tick(review=review, user=team.owner, step="walk.approval")
    review_walk_choose(review=review, user=team.owner, change_id=team.change.id)
    with pytest.raises(InvalidTransition, match="the trail holds no undo of the change walked through yet"):
        review_step_tick(review=review, user=team.owner, step="walk.rollback")
    assert "walk.rollback" not in ReadinessReview.objects.get(pk=review.pk).steps


def test_a_step_is_ticked_once_and_the_walk_keeps_its_change(team: Team):
    review = review_start(workflow=team.workflow, user=team.owner)
    review_step_tick(review=review, user=team.ops, step="tasks")
    with pytest.raises(InvalidTransition, match=r"step 1 \(AI tasks touching the record\) was ticked by Priya Nair"):
        review_step_tick(review=review, user=team.owner, step="tasks")
    review_walk_choose(review=review, user=team.owner, change_id=team.change.id)
    review_step_tick(review=review, user=team.owner, step="walk.approval")
    other = ProposalFactory(workflow=team.workflow, status="approved", decided_by=team.lead)
    later = apply_update(
        RecordRef("customer", other.record_id), {"shipping_address": "1 Quay"}, at=timezone.now(), proposal=other
    )
    with pytest.raises(InvalidTransition, match="the walk of the chosen change has begun"):
        review_walk_choose(review=review, user=team.owner, change_id=later.id)


def test_only_a_change_of_this_workflow_may_be_walked(team: Team):
    elsewhere = ProposalFactory(workflow=WorkflowFactory(slug="refund-notes"), status="approved")
    change = apply_update(
        RecordRef("customer", elsewhere.record_id),
        {"shipping_address": "2 Quay"},
        at=timezone.now(),
        proposal=elsewhere,
    )
    review = review_start(workflow=team.workflow, user=team.owner)
    with pytest.raises(ValidationFailed) as refused:
        review_walk_choose(review=review, user=team.owner, change_id=change.id)
    assert refused.value.problems[0][0] == "change"
    assert ReadinessReview.objects.get(pk=review.pk).walk_change_id is None


def test_one_review_is_open_at_a_time_and_a_signed_off_one_is_read_only(team: Team):
    review = review_start(workflow=team.workflow, user=team.owner)
    with pytest.raises(InvalidTransition, match="a review of address-updates is already open, started by Olive Grant"):
        review_start(workflow=team.workflow, user=team.ops)
    review = walk_every_step_on(review, team)
    review = review_decide(review=review, user=team.owner, decision="ready", actions="")
    review_sign(review=review, user=team.owner)
    review_sign(review=review, user=team.ops)
    with pytest.raises(InvalidTransition, match="signed off on .* and is read-only; start a new review"):
        review_fields_mark(review=review, user=team.owner, marks=file_marks(team.workflow))
    with pytest.raises(InvalidTransition, match="read-only"):
        review_sign(review=review, user=team.staff)
    assert ReviewSignature.objects.filter(review=review).count() == 2
    again = review_start(workflow=team.workflow, user=team.ops)
    assert again.pk != review.pk and again.signed_off_at is None


def walk_every_step_on(review: ReadinessReview, team: Team) -> ReadinessReview:
    """The steps of an open review, ticked by the owner alone (who may tick every part)."""
    for step in ("tasks", "retention"):
        review_step_tick(review=review, user=team.owner, step=step)
    review_fields_mark(review=review, user=team.owner, marks=file_marks(team.workflow))
    review_walk_choose(review=review, user=team.owner, change_id=team.change.id)
    for step in ("walk.approval", "walk.write", "walk.trace"):
        review_step_tick(review=review, user=team.owner, step=step)
    revert(team.change, at=timezone.now())
    return review_step_tick(review=review, user=team.owner, step="walk.rollback")


def test_marking_write_on_a_high_risk_field_is_refused_naming_the_field(team: Team):
    review = review_start(workflow=team.workflow, user=team.owner)
    with pytest.raises(ValidationFailed) as refused:
        review_fields_mark(review=review, user=team.owner, marks=file_marks(team.workflow, shipping_address="write"))
    assert refused.value.problems == [
        ("customer.shipping_address", "write is refused on a high-risk field: every change to it is countersigned")
    ]
    with pytest.raises(ValidationFailed) as missing:
        review_fields_mark(review=review, user=team.owner, marks={"customer.email": "read"})
    assert ("customer.priority", "choose no access, read, suggest or write") in missing.value.problems
    assert ReadinessReview.objects.get(pk=review.pk).field_marks == {}


def test_who_runs_a_review(team: Team):
    with pytest.raises(NotAllowed, match="run by its owner, Olive Grant, and by staff or ops managers who see it"):
        review_start(workflow=team.workflow, user=team.lead)
    unseen_staff = UserFactory(username="it-staff", is_staff=True)
    with pytest.raises(NotAllowed):
        review_start(workflow=team.workflow, user=unseen_staff)
    review = review_start(workflow=team.workflow, user=team.staff)
    with pytest.raises(NotAllowed):
        review_step_tick(review=review, user=team.lead, step="tasks")
    assert ReadinessReview.objects.get(pk=review.pk).steps == {}


def test_a_workflow_touching_other_record_types_lists_their_fields(db):
    owner = UserFactory(username="owner")
    workflow = WorkflowFactory(slug="ticket-triage", owner=owner)
    FieldPolicy.objects.create(workflow=workflow, record_type="ticket", field="priority", access="write")
    rows = review_fields(workflow=workflow)
    assert {row.record_type for row in rows} == {"ticket"}
    assert {row.key: row.file_access for row in rows}["ticket.priority"] == "write"
    assert {row.key: row.file_access for row in rows}["ticket.status"] == "none"
