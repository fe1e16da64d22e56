"""Undo in the browser: a batch's dry run, the job's progress bar filled by a real worker over HTMX
polling, and one change undone with the Undo button."""

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from approvals.applying.services import proposals_apply
from approvals.models import FollowUp, FollowUpStatus, ProposalStatus, UndoJob, UndoJobStatus
from records.models import Change, Customer
from records.services.changes import ChangeOrigin, change_update
from records.store import RecordRef
from tests.helpers.factories import BatchFactory, ProposalFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.worker]

EMAIL = {"kind": "email_customer", "params": {"template": "address-confirmed"}}
SIZE = 40

# Collects every value the progress bar shows, whichever element HTMX swaps in.
WATCH_PROGRESS = """
window.__seen = [];
window.__loadedOnce = true;
const note = () => {
  const bar = document.querySelector('progress.progress');
  if (bar) window.__seen.push(Number(bar.getAttribute('value')));
};
note();
new MutationObserver(note).observe(document.querySelector('main'), {subtree: true, childList: true, attributes: true});
"""


@pytest.fixture
def ops(transactional_db):  # type: ignore[no-untyped-def]
    user = UserFactory(username="ops", password="ops")
    user.groups.add(Group.objects.get_or_create(name="ops-managers")[0])
    return user


def applied_batch():  # type: ignore[no-untyped-def]
    batch = BatchFactory(name="address sweep", expected_size=SIZE)
    proposals = [
        ProposalFactory(workflow=batch.workflow, batch=batch, status=ProposalStatus.APPROVED, follow_ups=[EMAIL])
        for _ in range(SIZE)
    ]
    proposals_apply(proposal_ids=[p.pk for p in proposals], worker="setup/1")
    middle = proposals[SIZE // 2]
    change_update(
        ref=RecordRef("customer", middle.record_id),
        values={"shipping_address": "9 Typed Street"},
        origin=ChangeOrigin(applied_by="dana"),
    )
    return batch, proposals, middle


def test_a_batch_undo_shows_its_dry_run_then_a_progress_bar_filled_by_the_worker(
    page, login, ops, start_worker, settings
):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "UNDO_POLL_SECONDS": 0.2}
    batch, proposals, middle = applied_batch()

    login("ops", "ops")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows").click()
    page.get_by_role("link", name="Undo a batch, a workflow's changes since a time, or a prompt version").click()
    page.get_by_label("A batch").check()
    page.get_by_label("Batch number").fill(str(batch.pk))
    page.get_by_role("button", name="Dry run").click()

    dry_run = page.get_by_role("region", name="Dry run")
    expect(dry_run).to_contain_text(f"{SIZE} changes to undo, newest first")
    expect(dry_run).to_contain_text("1 conflict: the record changed since")
    expect(dry_run).to_contain_text(f"{SIZE} not run yet (cancelled by the undo)")
    expect(dry_run.get_by_role("row").filter(has_text=middle.record_id)).to_contain_text("9 Typed Street")
    assert not UndoJob.objects.exists()

    page.get_by_label("Reason (required, kept in the trail)").fill("The sweep used prompt 6, which garbles addresses")
    page.get_by_role("button", name="Undo", exact=True).click()
    confirm = page.get_by_role("dialog", name=f"Undo {SIZE} changes in batch {batch.pk} (address sweep)?")
    expect(confirm).to_contain_text("1 record changed since: left as it is.")
    assert not UndoJob.objects.exists()
    confirm.get_by_role("button", name=f"Undo {SIZE} changes").click()
    page.wait_for_url(re.compile(r"/undo/jobs/\d+/$"))
    job = UndoJob.objects.get()

    progress = page.get_by_role("region", name="Undo progress")
    bar = page.get_by_role("progressbar", name="Changes undone")
    expect(progress).to_contain_text("Waiting for a worker")
    expect(bar).to_have_attribute("value", "0")
    expect(progress).to_contain_text(f"0 / {SIZE} done")
    expect(progress.get_by_role("button", name="Cancel")).to_be_visible()
    page.evaluate(WATCH_PROGRESS)

    start_worker(concurrency=1, env={"COUNTERSIGN_UNDO_CHUNK_SIZE": "1"})

    expect(bar).to_have_attribute("value", str(SIZE), timeout=60_000)
    expect(progress).to_contain_text("Done")
    expect(progress).to_contain_text(f"{SIZE} / {SIZE} done · 1 conflict")
    expect(progress.get_by_role("button", name="Cancel")).to_have_count(0)
    conflict = progress.get_by_role("row").filter(has_text=middle.record_id)
    expect(conflict).to_contain_text("9 Typed Street")
    expect(progress).to_contain_text(f"Batch {batch.pk} is still stopped")

    assert page.evaluate("window.__loadedOnce") is True, "the bar must move without reloading the page"
    seen = page.evaluate("window.__seen")
    assert seen == sorted(seen) and seen[-1] == SIZE
    assert any(0 < value < SIZE for value in seen), f"no step between 0 and {SIZE} was shown: {seen}"
    assert page.locator("#undo-progress[hx-trigger]").count() == 0

    job.refresh_from_db()
    assert (job.status, job.reverted, job.conflicts) == (UndoJobStatus.DONE, SIZE - 1, 1)
    assert Customer.objects.get(record_id=middle.record_id).shipping_address == "9 Typed Street"
    assert Customer.objects.filter(shipping_address="4 Old Mill Lane, Leith").count() == SIZE - 1
    assert FollowUp.objects.filter(status=FollowUpStatus.CANCELLED).count() == SIZE - 1


def test_one_change_undone_with_the_undo_button(page, login, ops):
    batch = BatchFactory()
    proposal = ProposalFactory(workflow=batch.workflow, batch=batch, status=ProposalStatus.APPROVED, follow_ups=[EMAIL])
    proposals_apply(proposal_ids=[proposal.pk], worker="setup/1")
    change = Change.objects.get(proposal_id=proposal.pk)

    login("ops", "ops")
    page.goto(f"/changes/{change.id}/undo/")
    panel = page.get_by_role("region", name="Undo this change")
    row = panel.get_by_role("row").filter(has_text="shipping address")
    expect(row).to_contain_text("4 Old Mill Lane, Leith")
    expect(row).to_contain_text("12 Harbour Road, Leith")
    page.evaluate("window.__loadedOnce = true")
    page.get_by_label("Reason (kept in the trail)").fill("wrong ticket")
    panel.get_by_role("button", name="Undo").click()

    expect(panel.get_by_role("status")).to_contain_text("Undone.")
    expect(panel).to_contain_text("Follow-ups cancelled before they ran: email the customer (address-confirmed).")
    assert page.evaluate("window.__loadedOnce") is True
    assert Customer.objects.get(record_id=proposal.record_id).shipping_address == "4 Old Mill Lane, Leith"

    panel.get_by_role("link", name="This undo is itself a change: undo the undo").click()
    page.get_by_role("region", name="Undo this change").get_by_role("button", name="Undo").click()
    expect(page.get_by_role("region", name="Undo this change").get_by_role("status")).to_contain_text("Undone.")
    assert Customer.objects.get(record_id=proposal.record_id).shipping_address == "12 Harbour Road, Leith"
