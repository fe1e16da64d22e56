"""A workflow with the demo's override schedule: leads 08:00-18:00 weekdays in London, ops on call after."""

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from django.contrib.auth.models import Group, User

from approvals.models import WEEKDAYS, Batch, Proposal, ProposalStatus, Workflow
from approvals.workflows.loading import workflow_group_permissions_sync
from tests.helpers.factories import BatchFactory, GroupFactory, ProposalFactory, UserFactory, WorkflowFactory

# Friday 27 November 2026: 22:00 GMT is after hours, 10:00 GMT is the day shift.
NIGHT = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
REASON = "Pipeline fix verified on ten records; letting the rest through"


@dataclass
class OnCall:
    workflow: Workflow
    lead: User
    ops: User
    agent: User
    owner: User
    leads: Group
    ops_managers: Group

    def batch(self, **kwargs: Any) -> Batch:
        return BatchFactory(workflow=self.workflow, **kwargs)

    def proposal(self, **kwargs: Any) -> Proposal:
        kwargs.setdefault("status", ProposalStatus.APPROVED)
        kwargs.setdefault("requested_by", "agent")
        kwargs.setdefault("requested_by_user", self.agent)
        return ProposalFactory(workflow=self.workflow, **kwargs)


def on_call_workflow(**workflow_fields: Any) -> OnCall:
    leads = GroupFactory(name="support-leads")
    ops_managers = GroupFactory(name="ops-managers")
    lead = UserFactory(username="lead", password="lead")
    lead.groups.add(leads)
    ops = UserFactory(username="ops", password="ops")
    ops.groups.add(ops_managers)
    agent = UserFactory(username="agent", password="agent")
    owner = UserFactory(username="owner", password="owner")
    fields: dict[str, Any] = {
        "slug": "address-updates",
        "owner": owner,
        "approver_group": leads,
        "override_day_group": leads,
        "override_days": ["mon", "tue", "wed", "thu", "fri"],
        "override_day_from": time(8),
        "override_day_to": time(18),
        "override_timezone": "Europe/London",
        "override_after_hours_group": ops_managers,
        "override_max_minutes": 240,
    }
    fields.update(workflow_fields)
    workflow = WorkflowFactory(**fields)
    workflow_group_permissions_sync(workflow=workflow)
    return OnCall(workflow, lead, ops, agent, owner, leads, ops_managers)


def after_hours_now(**workflow_fields: Any) -> OnCall:
    """The demo's schedule, except that the leads work every day but today and tomorrow (UTC):
    whatever the clock says, it is after hours now, and stays so for a test, even across midnight.
    For tests whose clock cannot be frozen: a browser, a worker process."""
    today = datetime.now(UTC).weekday()
    days = [day for index, day in enumerate(WEEKDAYS) if index not in (today, (today + 1) % 7)]
    fields: dict[str, Any] = {"override_days": days, "override_timezone": "UTC", "override_max_minutes": 120}
    return on_call_workflow(**(fields | workflow_fields))
