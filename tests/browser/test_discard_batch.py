"""Discarding a batch from its page: the reason first, then a dialog that names how many pending
proposals it cancels; Escape backs out, the dialog's own button discards, and the page says what
was cancelled and what was left."""

import pytest
from playwright.sync_api import expect

from approvals.models import Proposal, ProposalStatus
from tests.helpers.overrides import on_call_workflow

pytestmark = pytest.mark.browser


def test_the_lead_discards_a_batch_after_saying_why_and_answering_the_question(page, login, transactional_db, queued):
    on_call = on_call_workflow()
    batch = on_call.batch(name="Nightly sweep")
    pending = [on_call.proposal(batch=batch, status=ProposalStatus.PENDING) for _ in range(3)]
    approved = on_call.proposal(batch=batch)
    login("lead", "lead")
    page.goto(f"/review/batches/{batch.pk}/")

    page.get_by_text("Discard this batch").click()
    page.get_by_label("Reason (kept in the trail)").fill("the prompt misread the addresses")
    page.get_by_role("button", name="Discard batch", exact=True).click()
    question = page.get_by_role(
        "dialog", name=f"Discard batch {batch.pk} (Nightly sweep) and cancel its 3 pending proposals?"
    )
    expect(question).to_be_visible()
    expect(question).to_contain_text("1 approved proposal will still be written unless you stop it")
    page.keyboard.press("Escape")
    expect(question).to_be_hidden()
    assert set(Proposal.objects.filter(pk__in=[p.pk for p in pending]).values_list("status", flat=True)) == {"pending"}

    page.get_by_role("button", name="Discard batch", exact=True).click()
    question.get_by_role("button", name=f"Discard batch {batch.pk}").click()
    page.wait_for_url(f"**/review/batches/{batch.pk}/")
    expect(
        page.get_by_role("status").filter(has_text=f"Discarded batch {batch.pk}: cancelled 3 pending proposals.")
    ).to_be_visible()
    expect(page.get_by_text("3 pending proposals cancelled; it takes no more proposals.")).to_be_visible()
    expect(page.get_by_text("Discard this batch")).to_have_count(0)
    statuses = dict(Proposal.objects.filter(batch=batch).values_list("pk", "status"))
    assert statuses == {**{p.pk: "cancelled" for p in pending}, approved.pk: "approved"}
