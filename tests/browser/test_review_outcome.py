"""The review screen of an applied proposal, as a reviewer opens it from its record: what happened to it,
and no alarm about the record having changed when what changed it was this proposal's own write."""

import pytest
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from approvals.applying.services import proposals_apply
from approvals.review.services import proposal_approve
from records.models import Change
from tests.helpers.factories import GroupFactory, ProposalFactory, UserFactory, WorkflowFactory

pytestmark = pytest.mark.browser


def test_an_applied_proposal_shows_who_approved_it_and_the_change_it_wrote(page, login, transactional_db):
    leads = GroupFactory(name="support-leads")
    workflow = WorkflowFactory(slug="address-updates", approver_group=leads)
    assign_perm("approvals.review_workflow", leads, workflow)
    lead = UserFactory(username="lead", password="lead", first_name="Dana", last_name="Lee")
    lead.groups.add(leads)
    proposal = ProposalFactory(workflow=workflow)
    proposal_approve(proposal=proposal, reviewer=lead)
    proposals_apply(proposal_ids=[proposal.pk], worker="worker/1")
    change = Change.objects.get(proposal_id=proposal.pk)

    login("lead", "lead")
    page.goto(f"/review/{proposal.pk}/")
    decision = page.get_by_role("region", name="Decision")
    expect(decision).to_contain_text("Applied")
    expect(decision).to_contain_text("Approved by Dana Lee")
    expect(page.get_by_role("alert")).to_have_count(0)
    written = page.get_by_role("table", name="What it wrote")
    expect(written.get_by_role("row", name="shipping address")).to_contain_text("4 Old Mill Lane, Leith")
    expect(decision.get_by_role("button")).to_have_count(0)

    decision.get_by_role("link", name=str(change.id)[:8]).click()
    page.wait_for_url(f"**/trace/change/{change.id}/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
