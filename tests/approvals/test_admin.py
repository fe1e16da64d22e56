"""Nothing that the trail must record can be changed behind its back through the admin."""

import pytest
from django.urls import reverse

from approvals.models import StopSwitch, Workflow
from audit.models import AuditEvent
from tests.helpers.factories import BatchFactory, ProposalFactory, UserFactory, WorkflowFactory


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
