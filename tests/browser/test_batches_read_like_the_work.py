"""Batches and bulk undo in the browser: the batch page's counts move while writes run, the queue's
batch link opens it, and the undo page offers recent batches and puts the dry run's result first."""

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from approvals.applying.services import proposals_apply
from approvals.models import FollowUp, FollowUpStatus, ProposalStatus
from records.services.changes import ChangeOrigin, change_update
from records.store import RecordRef
from tests.helpers.factories import BatchFactory, ProposalFactory, UserFactory
from tests.helpers.overrides import on_call_workflow

pytestmark = pytest.mark.browser

EMAIL = {"kind": "email_customer", "params": {"template": "address-confirmed"}}


@pytest.fixture
def on_call(transactional_db):  # type: ignore[no-untyped-def]
    return on_call_workflow()


def test_the_batch_page_counts_move_as_writes_land_without_reloading(page, login, on_call, settings):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "BATCH_POLL_SECONDS": 0.3}
    batch = on_call.batch(name="Nightly address sweep")
    approved = [on_call.proposal(batch=batch, status=ProposalStatus.APPROVED) for _ in range(4)]
    for _ in range(2):
        on_call.proposal(batch=batch, status=ProposalStatus.PENDING)
    login("lead", "lead")
    page.goto(f"/review/batches/{batch.pk}/")
    counts = page.get_by_role("region", name="Batch progress").get_by_role("status")
    expect(counts).to_contain_text("4 approved, 0 written · 4 still to write · 4 of 6 decided")
    page.evaluate("window.__notReloaded = true")

    proposals_apply(proposal_ids=[p.pk for p in approved[:3]], worker="w/1")
    expect(counts).to_contain_text("4 approved, 3 written · 1 still to write")
    proposals_apply(proposal_ids=[approved[3].pk], worker="w/1")
    expect(counts).to_contain_text("4 approved, 4 written · 4 of 6 decided")
    expect(page.locator("#batch-progress[hx-trigger]")).to_have_count(0)  # nothing left to write: no more asking
    assert page.evaluate("window.__notReloaded") is True


def test_a_batch_link_in_the_queue_opens_the_batch_page(page, login, on_call):
    batch = on_call.batch(name="Weekend address sweep")
    on_call.proposal(batch=batch, status=ProposalStatus.PENDING)
    login("lead", "lead")
    page.goto("/review/")
    page.get_by_role("table", name="Pending proposals").get_by_role("link", name="Weekend address sweep").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Batch {batch.pk}: Weekend address sweep")
    expect(page.get_by_role("region", name="Batch progress").get_by_role("status")).to_contain_text("0 of 1 decided")


def test_the_chips_count_under_the_batch_filter(page, login, on_call):
    batch = on_call.batch(name="Weekend address sweep")
    for _ in range(2):
        on_call.proposal(batch=batch, status=ProposalStatus.PENDING)
    for _ in range(3):
        on_call.proposal(status=ProposalStatus.PENDING)
    login("lead", "lead")
    page.goto("/review/")
    chips = page.get_by_role("navigation", name="Pending per workflow")
    expect(chips.locator("[data-count='address-updates']")).to_have_text("5")
    page.get_by_label("Batch").select_option(str(batch.pk))
    expect(chips.locator("[data-count='address-updates']")).to_have_text("2")
    expect(chips).to_contain_text("counted under the filters in force")


@pytest.fixture
def ops(transactional_db):  # type: ignore[no-untyped-def]
    user = UserFactory(username="ops", password="ops")
    user.groups.add(Group.objects.get_or_create(name="ops-managers")[0])
    return user


def _applied_batch(name: str, size: int):  # type: ignore[no-untyped-def]
    batch = BatchFactory(name=name, expected_size=size)
    proposals = [
        ProposalFactory(workflow=batch.workflow, batch=batch, status=ProposalStatus.APPROVED, follow_ups=[EMAIL])
        for _ in range(size)
    ]
    proposals_apply(proposal_ids=[p.pk for p in proposals], worker="setup/1")
    return batch, proposals


def test_the_undo_page_offers_recent_batches_and_puts_the_dry_run_result_first(page, login, ops):
    _applied_batch("Older sweep", 2)
    batch, proposals = _applied_batch("Address sweep from the ticket import", 12)
    for proposal in proposals[:8]:
        change_update(
            ref=RecordRef("customer", proposal.record_id),
            values={"shipping_address": "9 Typed Street"},
            origin=ChangeOrigin(applied_by="dana"),
        )
    FollowUp.objects.filter(proposal__batch=batch).update(status=FollowUpStatus.SENT)
    login("ops", "ops")
    page.goto("/undo/")
    recent = page.get_by_role("group", name="Recent batches you may undo")
    links = recent.get_by_role("link")
    expect(links).to_have_count(2)
    expect(links.first).to_have_text(f"Batch {batch.pk}: Address sweep from the ticket import")
    expect(recent).to_contain_text("12 changes written")
    links.first.click()

    dry_run = page.get_by_role("region", name="Dry run")
    expect(dry_run).to_contain_text("12 changes to undo, newest first")
    expect(dry_run).to_contain_text("8 conflicts: the record changed since")
    undo = dry_run.get_by_role("button", name="Undo", exact=True)
    box = undo.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 768, "the Undo button is on the first screen"
    conflicts = dry_run.get_by_text("Conflicts (8): left as they are")
    sent = dry_run.get_by_text("Sent — cannot be retracted (12)")
    expect(conflicts).to_be_visible()
    expect(sent).to_be_visible()
    expect(dry_run.get_by_role("table")).to_be_hidden()  # folded until asked for
    conflicts.click()
    expect(dry_run.get_by_role("row").filter(has_text=proposals[0].record_id)).to_contain_text("9 Typed Street")
