"""Nothing that the trail must record can be changed behind its back through the admin, and what it
shows of records and the trail is shown to auditors only."""

import pytest
from django.urls import reverse

from approvals.models import StopSwitch, Workflow
from audit.models import AuditEvent
from records.models import Customer
from tests.helpers.factories import BatchFactory, ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.seeing import make_auditor


@pytest.fixture
def admin_client(client, db):  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_workflows_policies_and_stops_are_view_only_in_the_admin(admin_client):
    workflow = WorkflowFactory(stage="live")
    batch = BatchFactory(workflow=workflow)
    proposal = ProposalFactory(workflow=workflow)
    before = AuditEvent.objects.count()  # making the admin a superuser is on the trail already
    assert admin_client.get(reverse("admin:approvals_workflow_change", args=[workflow.pk])).status_code == 200
    response = admin_client.post(
        reverse("admin:approvals_workflow_change", args=[workflow.pk]), {"stage": "paused", "slug": workflow.slug}
    )
    assert response.status_code == 403
    assert admin_client.post(reverse("admin:approvals_stopswitch_add"), {"scope": "global"}).status_code == 403
    assert admin_client.get(f"/admin/approvals/workflow/{workflow.pk}/permissions/").status_code != 200
    for name, pk in (("workflow", workflow.pk), ("batch", batch.pk), ("proposal", proposal.pk)):
        assert (
            admin_client.post(reverse(f"admin:approvals_{name}_delete", args=[pk]), {"post": "yes"}).status_code == 403
        )
    workflow.refresh_from_db()
    assert workflow.stage == "live"
    assert Workflow.objects.count() == 1 and not StopSwitch.objects.exists()
    assert AuditEvent.objects.exclude(action="login.failed").count() == before


def test_records_changes_proposals_and_the_trail_are_shown_in_the_admin_to_auditors_only(admin_client):
    proposal = ProposalFactory(reason="refund agreed in the email of 3 May")
    customer = Customer.objects.get(record_id=proposal.record_id)
    pages = [
        reverse("admin:approvals_proposal_changelist"),
        reverse("admin:approvals_proposal_change", args=[proposal.pk]),
        reverse("admin:records_customer_change", args=[customer.pk]),
        reverse("admin:records_change_changelist"),
        reverse("admin:audit_auditevent_changelist"),
    ]
    for url in pages:
        assert admin_client.get(url).status_code == 403
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert "Customers" not in index and "Audit events" not in index and "Workflows" in index
    auditor = make_auditor(UserFactory(username="auditor", is_staff=True))
    admin_client.force_login(auditor)
    for url in pages:
        assert admin_client.get(url).status_code == 200
    assert customer.full_name in admin_client.get(pages[2]).content.decode()
