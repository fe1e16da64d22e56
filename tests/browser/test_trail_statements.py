"""What the trail says, as a person reads it in the browser: what a proposal found and proposes, who
rejected it, who wrote it over a conflict, and which field a lint flagged."""

from datetime import timedelta

import pytest
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from approvals.applying.services import Outcome, proposal_apply
from approvals.intake.lint import artifact_lint
from approvals.intake.services import ProposalData, proposal_submit
from approvals.overrides.services import override_grant
from approvals.review.services import proposal_force_apply, proposal_reject
from records.models import Customer
from tests.helpers.factories import (
    ArtifactFactory,
    CustomerFactory,
    OrderFactory,
    ProposalFactory,
    RetentionRuleFactory,
    UserFactory,
)
from tests.helpers.overrides import REASON, after_hours_now
from tests.helpers.pipeline import make_pipeline, make_workflow
from tests.helpers.seeing import make_auditor

pytestmark = pytest.mark.browser

REFUNDS = {("order", "refund_status"): "suggest", ("order", "amount"): "read"}


def _refund_proposal():  # type: ignore[no-untyped-def]
    """Only refund_status changes; the AI also sent the amount it saw, and a refund status the record
    no longer held."""
    pipeline = make_pipeline(make_workflow(slug="refund-notes", policies=REFUNDS))
    OrderFactory(record_id="ORD-50001", amount="140.56", refund_status="approved")
    data = ProposalData(
        record_type="order",
        record_id="ORD-50001",
        action="update",
        reason="The customer asked for a refund in T-881",
        confidence=0.9,
        model_name="gpt-x",
        model_version="2026-10-01",
        prompt_version="refund@3",
        changes={"refund_status": "requested"},
        base={"amount": "140.56", "refund_status": "none"},
    )
    return proposal_submit(account=pipeline.account, data=data)


@pytest.fixture
def auditor(transactional_db):  # type: ignore[no-untyped-def]
    return make_auditor(UserFactory(username="auditor", password="auditor", first_name="Ada", last_name="Audit"))


def _row(page, action: str):  # type: ignore[no-untyped-def]
    return page.locator("table.events tbody tr", has=page.locator("strong", has_text=action))


def test_a_submission_shows_what_the_record_held_and_only_what_changes(page, login, auditor):
    proposal = _refund_proposal()
    login("auditor", "auditor")

    page.goto("/records/order/ORD-50001/")
    submitted = _row(page, "proposal.submitted")
    expect(submitted).to_contain_text("refund status: approved → requested (the AI saw none)")
    expect(submitted).not_to_contain_text("amount")
    expect(submitted).not_to_contain_text("(empty)")

    page.goto(f"/trace/proposal/{proposal.pk}/")
    summary = page.get_by_label("Summary")
    expect(summary).to_contain_text(
        "proposed to change refund status from 'approved' to 'requested' (the AI saw 'none')"
    )
    expect(summary).not_to_contain_text("amount")


def test_a_rejection_reads_rejected_by_on_the_timeline_the_trace_and_the_trail(page, login, auditor):
    proposal = _refund_proposal()
    lead = UserFactory(username="lead", first_name="Dana", last_name="Lee")
    proposal.workflow.approver_group.user_set.add(lead)
    assign_perm("approvals.review_workflow", proposal.workflow.approver_group, proposal.workflow)
    proposal_reject(proposal=proposal, reviewer=lead, reason="The refund was already paid")
    login("auditor", "auditor")

    page.goto("/records/order/ORD-50001/")
    rejected = _row(page, "proposal.rejected")
    expect(rejected).to_contain_text("rejected by Dana Lee at")
    expect(rejected).not_to_contain_text("approved by")

    page.goto(f"/trace/proposal/{proposal.pk}/")
    summary = page.get_by_label("Summary")
    expect(summary).to_contain_text("Rejected by Dana Lee at")
    expect(summary).to_contain_text("“The refund was already paid”")
    expect(summary).not_to_contain_text("Approved by")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Trail").click()
    expect(_row(page, "proposal.rejected")).to_contain_text("rejected by Dana Lee at")


def test_a_write_forced_over_a_conflict_names_who_forced_it_in_the_headline(page, login, auditor):
    on_call = after_hours_now()
    on_call.ops.first_name, on_call.ops.last_name = "Sam", "Okafor"
    on_call.ops.save()
    lead = on_call.lead
    customer = CustomerFactory(shipping_address="4 Old Mill Lane, Leith")
    proposal = on_call.proposal(record_id=customer.record_id, base_version=1, decided_by=lead)
    Customer.objects.filter(pk=customer.pk).update(shipping_address="9 New Street, Leith", version=2)
    assert proposal_apply(proposal_id=proposal.pk, worker="worker@test").outcome == Outcome.CONFLICT
    proposal.refresh_from_db()
    override_grant(user=on_call.ops, block="conflict", scope="proposal", proposal=proposal, reason=REASON)
    proposal_force_apply(proposal=proposal, user=on_call.ops, expected_version=2)
    assert proposal_apply(proposal_id=proposal.pk, worker="worker@test").outcome == Outcome.APPLIED
    login("auditor", "auditor")

    page.goto(f"/trace/proposal/{proposal.pk}/")
    summary = page.get_by_label("Summary")
    expect(summary).to_contain_text("then forced over a conflict by Sam Okafor at")
    expect(summary).to_contain_text("under a conflict override")
    expect(_row(page, "proposal.forced")).to_contain_text("forced over a conflict by Sam Okafor at")


def test_a_lint_event_names_the_field_it_flagged(page, login, auditor):
    workflow = make_workflow(slug="address-updates", policies={("customer", "shipping_address"): "suggest"})
    customer = CustomerFactory(email="maria.lopez@example.com", shipping_address="4 Old Mill Lane, Leith")
    proposal = ProposalFactory(workflow=workflow, record_id=customer.record_id)
    rule = RetentionRuleFactory(workflow=workflow, kind="prompt", bucket="live", window=timedelta(days=7))
    artifact = ArtifactFactory.create(rule=rule, proposal_id=proposal.pk, content="Write to maria.lopez@example.com")
    assert artifact_lint(artifact=artifact) == ["customer.email"]
    login("auditor", "auditor")

    page.goto(f"/trace/proposal/{proposal.pk}/")
    flagged = _row(page, "proposal.artifact_flagged")
    expect(flagged).to_contain_text("flagged customer email in its prompt")
    expect(flagged).not_to_contain_text("→")
    expect(flagged).not_to_contain_text("(empty)")
