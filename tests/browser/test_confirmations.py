"""Approve all N, Approve on a delete or a merge, and Undo of many changes ask first, in a dialog that
names what will happen; its button is named by its verb, and the keyboard answers it or backs out."""

import pytest
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from approvals.models import Proposal, ProposalStatus
from tests.helpers.factories import (
    BatchFactory,
    CustomerFactory,
    GroupFactory,
    OrderFactory,
    ProposalFactory,
    TicketFactory,
    UserFactory,
    WorkflowFactory,
)
from tests.helpers.sight import settled

pytestmark = pytest.mark.browser


@pytest.fixture
def workflow(transactional_db):  # type: ignore[no-untyped-def]
    leads = GroupFactory(name="support-leads")
    workflow = WorkflowFactory(slug="address-updates", approver_group=leads, actions=["update", "delete", "merge"])
    assign_perm("approvals.review_workflow", leads, workflow)
    UserFactory(username="lead", password="lead", first_name="Dana", last_name="Lee").groups.add(leads)
    return workflow


def test_approve_all_of_a_group_asks_how_many_of_what_in_which_batch(page, login, workflow, queued):
    batch = BatchFactory(workflow=workflow, name="November sweep")
    proposals = [ProposalFactory(workflow=workflow, batch=batch) for _ in range(3)]
    login("lead", "lead")
    page.goto(f"/review/batches/{batch.pk}/")
    page.get_by_role("link", name="Open group").click()
    settled(page)

    page.get_by_role("button", name="Approve all 3").click()
    question = page.get_by_role("dialog", name=f"Approve 3 shipping address changes in batch {batch.pk}?")
    expect(question).to_be_visible()
    expect(question).to_contain_text("Each is approved and recorded on its own.")
    page.keyboard.press("Escape")
    expect(question).to_be_hidden()
    assert set(Proposal.objects.values_list("status", flat=True)) == {ProposalStatus.PENDING}

    page.get_by_role("button", name="Approve all 3").click()
    question.get_by_role("button", name="Cancel").click()
    expect(question).to_be_hidden()
    page.get_by_role("button", name="Approve all 3").click()
    question.get_by_role("button", name="Approve 3").click()
    page.wait_for_url(f"**/review/batches/{batch.pk}/")
    expect(page.get_by_role("status").filter(has_text="Approved 3 proposals one by one.")).to_be_visible()
    statuses = set(Proposal.objects.filter(pk__in=[p.pk for p in proposals]).values_list("status", flat=True))
    assert statuses == {ProposalStatus.APPROVED}


def test_a_delete_asks_before_approving_and_the_keyboard_answers(page, login, workflow, queued):
    customer = CustomerFactory(full_name="Ana Ruiz")
    delete = ProposalFactory(workflow=workflow, action="delete", record_id=customer.record_id, changes={})
    after = ProposalFactory(workflow=workflow)
    login("lead", "lead")
    page.goto(f"/review/{delete.pk}/")
    settled(page, delete)

    page.keyboard.press("a")
    question = page.get_by_role("dialog", name=f"Delete customer {customer.record_id}?")
    expect(question).to_be_visible()
    confirm = question.get_by_role("button", name="Approve delete")
    expect(confirm).to_be_focused()
    page.keyboard.press("a")  # a second press is not an answer
    page.keyboard.press("Escape")
    expect(question).to_be_hidden()
    assert Proposal.objects.get(pk=delete.pk).status == ProposalStatus.PENDING

    page.keyboard.press("a")
    expect(confirm).to_be_focused()
    page.keyboard.press("Enter")
    page.locator(f"[data-proposal='{after.pk}']").wait_for()
    expect(page.get_by_role("status")).to_contain_text(f"Approved the delete of {customer.record_id}")
    assert Proposal.objects.get(pk=delete.pk).status == ProposalStatus.APPROVED
    assert Proposal.objects.get(pk=after.pk).status == ProposalStatus.PENDING


def test_a_merge_asks_naming_both_records_and_the_rows_that_move(page, login, workflow, queued):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    for _ in range(3):
        OrderFactory(customer=duplicate)
    for _ in range(2):
        TicketFactory(customer=duplicate)
    merge = ProposalFactory(
        workflow=workflow,
        action="merge",
        record_id=duplicate.record_id,
        merge_into=survivor.record_id,
        changes={},
        base={},
    )
    login("lead", "lead")
    page.goto(f"/review/{merge.pk}/")
    settled(page, merge)
    page.get_by_role("button", name="Approve", exact=True).click()
    question = page.get_by_role(
        "dialog", name=f"Merge {duplicate.record_id} into {survivor.record_id}: 3 orders and 2 tickets move"
    )
    expect(question).to_contain_text(f"{duplicate.record_id} is then archived; Undo unmerges them.")
    question.get_by_role("button", name="Approve merge").click()
    page.get_by_role("heading", name="Nothing left for you to decide here").wait_for()
    assert Proposal.objects.get(pk=merge.pk).status == ProposalStatus.APPROVED


def test_the_question_fits_a_phone(page, login, workflow, queued):
    delete = ProposalFactory(workflow=workflow, action="delete", changes={})
    page.set_viewport_size({"width": 390, "height": 844})
    login("lead", "lead")
    page.goto(f"/review/{delete.pk}/")
    settled(page, delete)
    page.get_by_role("button", name="Approve", exact=True).click()
    question = page.get_by_role("dialog")
    expect(question).to_be_visible()
    box, button = question.bounding_box(), question.get_by_role("button", name="Approve delete").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert button is not None and button["x"] + button["width"] <= box["x"] + box["width"]
