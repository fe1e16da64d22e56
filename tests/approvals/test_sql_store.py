"""A customer kept in the company's own CRM database, through the whole gate: the pipeline reads it
and proposes a change, a person approves it, a real worker writes it into the CRM table. The worker
was already running, on the built-in store, when the stores file was loaded: it follows the new
binding without a restart."""

import pytest
from django.core.management import call_command
from django.urls import reverse
from guardian.shortcuts import assign_perm

from approvals.models import Proposal, ProposalStatus
from audit.models import AuditEvent
from records.models import Change
from tests.helpers.factories import CustomerFactory, GroupFactory, UserFactory
from tests.helpers.pipeline import make_pipeline, make_workflow, proposal_body
from tests.helpers.seeing import make_auditor
from tests.helpers.sight import looked_at
from tests.helpers.worker import wait_until

pytestmark = pytest.mark.postgres

POLICIES = {
    ("customer", "full_name"): "read",
    ("customer", "shipping_address"): "suggest",
    ("customer", "priority"): "write",
}


@pytest.mark.worker
def test_an_approved_change_to_a_customer_in_the_crm_is_written_there_by_the_worker(
    transactional_db, crm, tmp_path, client, start_worker
):
    leads = GroupFactory(name="support-leads")
    workflow = make_workflow(policies=POLICIES, approver_group=leads, follow_up_templates={})
    for permission in ("approvals.view_workflow", "approvals.review_workflow"):
        assign_perm(permission, leads, workflow)
    lead = UserFactory(username="lead", password="lead")
    lead.groups.add(leads)
    pipeline = make_pipeline(workflow)
    start_worker(concurrency=1)

    # Before the stores file: a change that needs no review, written by the worker to the built-in store.
    built_in = CustomerFactory(record_id="CUS-10432", priority="normal")
    quick = pipeline.post(
        "/api/v1/proposals",
        proposal_body(changes={"priority": "high"}, base={"priority": "normal"}, follow_ups=...),
    )
    assert quick.status_code == 201, quick.content
    wait_until(
        lambda: pipeline.get(f"/api/v1/proposals/{quick.json()['id']}").json()["status"] == "applied", timeout=60
    )
    built_in.refresh_from_db()
    assert (built_in.priority, built_in.version) == ("high", 2)

    call_command("load_stores", str(crm.stores_file(tmp_path)))
    record = pipeline.get("/api/v1/records/customer/CUS-9001")
    assert record.status_code == 200
    assert record.json()["version"] == 1
    assert record.json()["fields"] == {
        "full_name": "Maria Lopez",
        "shipping_address": "4 Old Mill Lane, Leith",
        "priority": "normal",
    }

    body = proposal_body(record_id="CUS-9001", follow_ups=...)
    submitted = pipeline.post("/api/v1/proposals", body)
    assert submitted.status_code == 201, submitted.content
    proposal = Proposal.objects.get(pk=submitted.json()["id"])
    assert proposal.status == ProposalStatus.PENDING

    client.force_login(lead)
    approved = client.post(reverse("review-approve", args=[proposal.pk]), looked_at(proposal, lead))
    assert approved.status_code in (200, 302)
    wait_until(
        lambda: Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.APPLIED, timeout=60, what="applied"
    )

    contact = crm.contact("CUS-9001")
    assert (contact["postal_address"], contact["row_version"]) == ("12 Harbour Road, Leith", 2)
    change = Change.objects.get(proposal_id=proposal.pk)
    assert (change.before, change.after) == (
        {"shipping_address": "4 Old Mill Lane, Leith"},
        {"shipping_address": "12 Harbour Road, Leith"},
    )
    assert (change.version_before, change.version_after) == (1, 2)
    event = AuditEvent.objects.get(action="change.applied", proposal_id=proposal.pk)
    assert (event.record_id, event.new_value) == ("CUS-9001", "12 Harbour Road, Leith")
    assert pipeline.get(f"/api/v1/proposals/{proposal.pk}").json()["status"] == "applied"


def test_the_record_page_of_a_customer_in_the_crm_shows_what_the_crm_holds(db, crm, tmp_path, client):
    call_command("load_stores", str(crm.stores_file(tmp_path)))
    client.force_login(make_auditor(UserFactory(username="auditor")))
    response = client.get(reverse("record-timeline", args=["customer", "CUS-9001"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Maria Lopez" in html and "4 Old Mill Lane, Leith" in html
