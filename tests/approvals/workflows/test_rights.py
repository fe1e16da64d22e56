"""Who may see a workflow is one rule for the workflows page, the blocked page and the retention page;
what the workflow file grants is read from the object permissions alone."""

import pytest
from django.urls import reverse
from guardian.shortcuts import assign_perm

from approvals.workflows.rights import (
    is_ops_manager,
    workflow_visible_to,
    workflows_reviewable_by,
    workflows_visible_to,
)
from tests.helpers.factories import GroupFactory, UserFactory, WorkflowFactory


@pytest.fixture
def keeper(db):  # type: ignore[no-untyped-def]
    return UserFactory(username="keeper", password="keeper")


@pytest.fixture
def workflow(keeper):  # type: ignore[no-untyped-def]
    return WorkflowFactory(slug="refund-notes", name="Refund notes", retention_owner=keeper)


def test_the_keeper_of_a_workflow_s_retention_rules_sees_it_on_every_page(client, keeper, workflow):
    client.force_login(keeper)
    assert "refund-notes" in client.get(reverse("workflow-list")).content.decode()
    assert client.get(reverse("workflow-retention", args=["refund-notes"])).status_code == 200
    assert list(workflows_visible_to(user=keeper)) == [workflow]


def test_someone_with_no_part_in_a_workflow_sees_it_nowhere(client, workflow):
    stranger = UserFactory(username="stranger")
    client.force_login(stranger)
    assert "refund-notes" not in client.get(reverse("workflow-list")).content.decode()
    assert client.get(reverse("workflow-retention", args=["refund-notes"])).status_code == 404
    assert not workflow_visible_to(user=stranger, workflow=workflow)


def test_viewers_and_owners_see_it_in_the_list_and_one_by_one_and_a_superuser_does_not(workflow):
    viewers = GroupFactory(name="viewers")
    viewer = UserFactory(username="viewer")
    viewer.groups.add(viewers)
    assign_perm("approvals.view_workflow", viewers, workflow)
    for user in (viewer, workflow.owner):
        assert list(workflows_visible_to(user=user)) == [workflow]
        assert workflow_visible_to(user=user, workflow=workflow)
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    assert not workflows_visible_to(user=root).exists()
    assert not workflow_visible_to(user=root, workflow=workflow)


def test_a_superuser_reviews_only_what_the_workflow_file_grants_them(workflow):
    root = UserFactory(username="root", is_superuser=True)
    assert not workflows_reviewable_by(user=root).exists()
    leads = GroupFactory(name="support-leads")
    root.groups.add(leads)
    assign_perm("approvals.review_workflow", leads, workflow)
    assert list(workflows_reviewable_by(user=root)) == [workflow]


def test_ops_managers_are_the_members_of_the_configured_group(db, settings):
    settings.COUNTERSIGN = settings.COUNTERSIGN | {"OPS_MANAGER_GROUP": "night-shift"}
    ops = UserFactory(username="ops")
    ops.groups.add(GroupFactory(name="night-shift"))
    other = UserFactory(username="other")
    other.groups.add(GroupFactory(name="ops-managers"))
    assert is_ops_manager(ops) and not is_ops_manager(other)


def test_what_a_person_may_see_comes_from_their_workflows_and_groups_never_from_their_flags(db):
    from django.contrib.auth.models import Permission

    from approvals.workflows.rights import viewer_scope
    from tests.helpers.factories import FieldPolicyFactory
    from tests.helpers.seeing import make_auditor, make_exporter

    leads, ops_managers = GroupFactory(name="support-leads"), GroupFactory(name="ops-managers")
    mine = WorkflowFactory(slug="address-updates", approver_group=leads)
    other = WorkflowFactory(slug="refund-notes")
    FieldPolicyFactory(workflow=mine, record_type="customer", field="shipping_address", access="suggest")
    FieldPolicyFactory(workflow=other, record_type="order", field="refund_status", access="suggest")
    assign_perm("approvals.review_workflow", leads, mine)
    lead, ops = UserFactory(username="lead"), UserFactory(username="ops")
    lead.groups.add(leads)
    ops.groups.add(ops_managers)

    scope = viewer_scope(lead)
    assert scope.workflow_slugs == {"address-updates"} and not scope.everything and not scope.may_export
    assert scope.sees_field("customer", "shipping_address") and scope.sees_field("customer", "archived_at")
    assert not scope.sees_field("customer", "internal_notes") and not scope.sees_record_type("order")
    assert viewer_scope(ops).workflow_slugs == {"address-updates", "refund-notes"}
    assert viewer_scope(ops).sees_field("order", "refund_status") and not viewer_scope(ops).everything

    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    root.user_permissions.add(*Permission.objects.filter(codename__in=["audit_trail", "export_trail"]))
    assert viewer_scope(root) == viewer_scope(UserFactory(username="nobody"))
    assert not viewer_scope(root).workflow_slugs and not viewer_scope(root).may_export

    assert viewer_scope(make_exporter(UserFactory(username="clerk"))).may_export
    auditor = viewer_scope(make_auditor(UserFactory(username="auditor"), export=False))
    assert auditor.everything and not auditor.may_export and auditor.sees_field("customer", "internal_notes")
