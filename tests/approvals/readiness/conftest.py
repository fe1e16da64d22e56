"""A workflow ready for its five-step review: its owner, an ops manager and a staff member who see it,
a lead who sees it but does not run reviews, and one applied change of its to walk through."""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.models import FieldPolicy, ReadinessReview, Workflow
from approvals.readiness.review import (
    review_fields_mark,
    review_start,
    review_step_tick,
    review_walk_choose,
)
from approvals.readiness.review_selectors import review_fields
from records.models import Change
from records.store import RecordRef
from tests.helpers.factories import (
    CustomerFactory,
    GroupFactory,
    ProposalFactory,
    RetentionRuleFactory,
    UserFactory,
    WorkflowFactory,
)
from tests.helpers.seeing import let_see
from tests.helpers.trail import apply_update, revert


@dataclass
class Team:
    workflow: Workflow
    owner: User
    ops: User
    staff: User
    lead: User
    change: Change


@pytest.fixture
def team(db) -> Team:  # type: ignore[no-untyped-def]
    owner = UserFactory(username="owner", first_name="Olive", last_name="Grant")
    leads = GroupFactory(name="support-leads")
    workflow = WorkflowFactory(slug="address-updates", name="Address updates", owner=owner, approver_group=leads)
    for codename in ("view_workflow", "review_workflow"):
        assign_perm(f"approvals.{codename}", leads, workflow)
    FieldPolicy.objects.create(workflow=workflow, record_type="customer", field="email", access="read")
    FieldPolicy.objects.create(workflow=workflow, record_type="customer", field="shipping_address", access="suggest")
    FieldPolicy.objects.create(workflow=workflow, record_type="customer", field="priority", access="write")
    RetentionRuleFactory(workflow=workflow, kind="prompt", bucket="live", window=timedelta(days=7), owner=owner)
    ops = UserFactory(username="ops", first_name="Priya", last_name="Nair")
    ops.groups.add(GroupFactory(name=settings.COUNTERSIGN["OPS_MANAGER_GROUP"]))
    staff = let_see(UserFactory(username="sam", first_name="Sam", last_name="Okafor", is_staff=True), workflow)
    lead = UserFactory(username="lead", first_name="Dana", last_name="Lee")
    lead.groups.add(leads)
    customer = CustomerFactory(shipping_address="4 Old Mill Lane, Leith")
    proposal = ProposalFactory(
        workflow=workflow,
        record_id=customer.record_id,
        status="approved",
        decided_by=lead,
        decided_at=timezone.now() - timedelta(hours=1),
    )
    change = apply_update(
        RecordRef("customer", customer.record_id),
        {"shipping_address": "12 Harbour Road, Leith"},
        at=timezone.now() - timedelta(minutes=50),
        proposal=proposal,
    )
    return Team(workflow=workflow, owner=owner, ops=ops, staff=staff, lead=lead, change=change)


def file_marks(workflow: Workflow, **changed: str) -> dict[str, str]:
    """Every field marked as the file has it, but for `changed` ("shipping_address": "read")."""
    marks = {row.key: row.file_access for row in review_fields(workflow=workflow)}
    marks.update({f"customer.{name}": access for name, access in changed.items()})
    return marks


def walk_every_step(team: Team, **marks: str) -> ReadinessReview:
    """Steps 1 to 4, each by a person who did it: the change undone before rollback is ticked."""
    review = review_start(workflow=team.workflow, user=team.ops)
    review_step_tick(review=review, user=team.ops, step="tasks", note="Only address-updates touches customers")
    review_fields_mark(review=review, user=team.owner, marks=file_marks(team.workflow, **marks))
    review_step_tick(review=review, user=team.owner, step="retention")
    review_walk_choose(review=review, user=team.ops, change_id=team.change.id)
    for step in ("walk.approval", "walk.write", "walk.trace"):
        review_step_tick(review=review, user=team.ops, step=step)
    revert(team.change, at=timezone.now())
    return review_step_tick(review=review, user=team.staff, step="walk.rollback")
