"""People and workflows for the approvals tests: two leads who review, an agent who asks, the on-call schedule."""

import pytest
from guardian.shortcuts import assign_perm

from tests.helpers.factories import GroupFactory, UserFactory, WorkflowFactory
from tests.helpers.overrides import OnCall, on_call_workflow


@pytest.fixture
def leads_group(db):  # type: ignore[no-untyped-def]
    return GroupFactory(name="support-leads")


@pytest.fixture
def workflow(leads_group):  # type: ignore[no-untyped-def]
    workflow = WorkflowFactory(slug="address-updates", approver_group=leads_group)
    assign_perm("approvals.review_workflow", leads_group, workflow)
    assign_perm("approvals.view_workflow", leads_group, workflow)
    return workflow


@pytest.fixture
def lead(leads_group):  # type: ignore[no-untyped-def]
    user = UserFactory(username="lead", password="lead", first_name="Dana", last_name="Lee")
    user.groups.add(leads_group)
    return user


@pytest.fixture
def second_lead(leads_group):  # type: ignore[no-untyped-def]
    user = UserFactory(username="sam", password="sam", first_name="Sam", last_name="Okafor")
    user.groups.add(leads_group)
    return user


@pytest.fixture
def agent(db):  # type: ignore[no-untyped-def]
    return UserFactory(username="agent", password="agent", first_name="Alex", last_name="Reid")


@pytest.fixture
def on_call(db: None) -> OnCall:
    """A workflow with the demo's override schedule, its day-time lead and its ops manager on call."""
    return on_call_workflow()
