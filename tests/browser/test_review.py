from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.models import Proposal, ProposalStatus, Workflow
from records.models import Change, Customer
from tests.helpers.factories import (
    BatchFactory,
    CustomerFactory,
    GroupFactory,
    ProposalFactory,
    UserFactory,
    WorkflowFactory,
)
from tests.helpers.queued import Queued
from tests.helpers.sight import settled

pytestmark = pytest.mark.browser


@pytest.fixture
def workflow(transactional_db):  # type: ignore[no-untyped-def]
    leads = GroupFactory(name="support-leads")
    workflow = WorkflowFactory(slug="address-updates", approver_group=leads)
    assign_perm("approvals.review_workflow", leads, workflow)
    for username, first, last in (("lead", "Dana", "Lee"), ("sam", "Sam", "Okafor")):
        UserFactory(username=username, password=username, first_name=first, last_name=last).groups.add(leads)
    return workflow


def pending(workflow, count: int):  # type: ignore[no-untyped-def]
    start = timezone.now() - timedelta(minutes=count + 1)
    return [ProposalFactory(workflow=workflow, created_at=start + timedelta(minutes=n)) for n in range(count)]


def heading(page) -> str:  # type: ignore[no-untyped-def]
    return page.get_by_role("heading", level=1).inner_text()


def test_a_lead_approves_with_a_and_the_next_proposal_appears_without_navigation(queued, page, login, workflow):
    first, second, third = pending(workflow, 3)
    login("lead", "lead")
    page.goto(f"/review/{first.pk}/")
    assert first.record_id in heading(page)
    page.evaluate("window.stillTheSamePage = true")

    settled(page, first)
    page.keyboard.press("a")
    page.get_by_role("heading", level=1).filter(has_text=second.record_id).wait_for()
    assert page.evaluate("window.stillTheSamePage") is True  # swapped in, not a page load
    assert page.url.endswith(f"/review/{second.pk}/")
    assert (
        page.get_by_role("status").inner_text()
        == f"Approved the update of {first.record_id}; it will be applied shortly."
    )
    page.locator("[data-count='all']", has_text="2").wait_for()  # the counts heard the event
    first.refresh_from_db()
    assert first.status == ProposalStatus.APPROVED
    assert first.decided_by is not None and first.decided_by.username == "lead"
    assert queued == [Queued("approvals.apply_approved", [[first.pk]])]

    page.keyboard.press("j")
    page.get_by_role("heading", level=1).filter(has_text=third.record_id).wait_for()
    page.keyboard.press("k")
    page.get_by_role("heading", level=1).filter(has_text=second.record_id).wait_for()
    assert page.evaluate("window.stillTheSamePage") is True


def test_a_lead_rejects_with_r_and_a_reason(queued, page, login, workflow):
    first, second = pending(workflow, 2)
    login("lead", "lead")
    page.goto(f"/review/{first.pk}/")
    settled(page, first)
    page.keyboard.press("r")
    reason = page.get_by_label("Reason for rejecting")
    assert reason.evaluate("element => element === document.activeElement")
    assert reason.input_value() == ""  # the key focused the box; it typed nothing
    page.keyboard.type("The ticket is about another customer")
    page.keyboard.press("Enter")
    page.get_by_role("heading", level=1).filter(has_text=second.record_id).wait_for()
    assert page.get_by_role("status").inner_text() == f"Rejected the update of {first.record_id}."
    first.refresh_from_db()
    assert first.status == ProposalStatus.REJECTED
    assert first.decision_note == "The ticket is about another customer"
    assert queued == []


def test_the_requester_sees_no_approve_button_and_a_direct_post_is_refused(queued, page, login, workflow):
    proposal = ProposalFactory(workflow=workflow, requested_by="lead")
    login("lead", "lead")
    page.goto(f"/review/{proposal.pk}/")
    assert page.get_by_role("button", name="Approve").count() == 0
    assert page.get_by_role("button", name="Reject").count() == 0
    note = page.get_by_role("note")
    assert (
        note.inner_text()
        == "You asked for this change, so you cannot approve or reject it: someone else must decide it."
    )
    page.keyboard.press("a")
    page.wait_for_timeout(200)
    status = page.evaluate(
        """async (url) => {
            const token = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
            const answer = await fetch(url, {method: "POST", headers: {"X-CSRFToken": token},
                                             body: new URLSearchParams({revision: "1"})});
            return answer.status;
        }""",
        f"/review/{proposal.pk}/approve/",
    )
    assert status == 403
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING
    assert queued == []


def test_a_six_field_proposal_fits_1366_by_768_without_scrolling(page, login, workflow):
    customer = CustomerFactory(
        full_name="Margaret Elspeth Robertson",
        email="m.robertson@example.com",
        phone="+44 131 496 0000",
        shipping_address="Flat 3/2, 14 Great Junction Street, Leith, Edinburgh EH6 5LA",
        support_notes="Prefers email. Called about a late parcel in October.",
        internal_notes="Long-standing customer since 2019.",
    )
    changes = {
        "full_name": "Margaret Elspeth Robertson-Hay",
        "email": "margaret.robertson-hay@example.com",
        "phone": "+44 7700 900461",
        "shipping_address": "12 Harbour Road, Newhaven, Edinburgh EH6 4LE",
        "support_notes": "Prefers email. Called on 27 November about a late parcel; promised a callback on Friday "
        "and a refund of the delivery fee if the courier misses the new date.",
        "internal_notes": "Long-standing customer since 2019. Name and address changed after marriage and a move.",
    }
    base = {name: getattr(customer, name) for name in changes}
    batch = BatchFactory(workflow=workflow, name="Customer details from November tickets")
    proposal = ProposalFactory(
        workflow=workflow,
        batch=batch,
        record_id=customer.record_id,
        changes=changes,
        base=base,
        reason="The customer wrote in ticket T-881 that she married and moved; the notes sum up the call.",
    )
    for n in range(3):
        ProposalFactory(workflow=workflow, batch=batch)
        ProposalFactory(workflow=workflow, record_id=customer.record_id, changes={"phone": f"+44 {n}"}, base={})
        Change.objects.create(
            record_type="customer",
            record_id=customer.record_id,
            action="update",
            before={"priority": "normal"},
            after={"priority": "high", "tags": ["vip"]},
            version_before=n + 1,
            version_after=n + 2,
            workflow_slug="address-updates",
            applied_by="worker",
        )
    login("lead", "lead")
    page.goto(f"/review/{proposal.pk}/")
    page.wait_for_load_state("networkidle")
    assert page.locator("table.diff tbody tr").count() == 6
    viewport = page.evaluate("window.innerHeight")
    assert viewport == 768
    assert page.evaluate("document.documentElement.scrollHeight") <= viewport
    for name in ("Approve", "Reject"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None and box["y"] + box["height"] <= viewport
    for text in ("Who asked", "Why", "Model", "Batch", f"Last changes to {customer.record_id}"):
        box = page.get_by_text(text, exact=True).first.bounding_box()
        assert box is not None and box["y"] + box["height"] <= viewport, text


def test_a_stale_proposal_shows_all_three_values(page, login, workflow):
    proposal = ProposalFactory(workflow=workflow)
    Customer.objects.filter(record_id=proposal.record_id).update(shipping_address="9 Quay Street, Leith")
    login("lead", "lead")
    page.goto(f"/review/{proposal.pk}/")
    warning = page.get_by_role("alert")
    text = warning.inner_text()
    assert text.startswith("The record changed after the AI read it.")
    assert "the AI saw “4 Old Mill Lane, Leith”" in text
    assert "the record now holds “9 Quay Street, Leith”" in text
    assert "the AI proposes “12 Harbour Road, Leith”" in text
    row = page.locator("tr[data-field='shipping_address']")
    assert row.locator("td.base").inner_text() == "4 Old Mill Lane, Leith"
    assert row.locator("td.current").inner_text() == "9 Quay Street, Leith"
    assert row.locator("td.proposed").inner_text() == "12 Harbour Road, Leith"
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.PENDING


def test_a_proposal_s_follow_ups_show_on_one_screen_before_the_decision(page, login, workflow):
    customer = CustomerFactory(full_name="Maria Lopez", email="maria.lopez@example.com")
    Workflow.objects.filter(pk=workflow.pk).update(webhook_hosts=["hooks.example.com"])
    proposal = ProposalFactory(
        workflow=workflow,
        record_id=customer.record_id,
        follow_ups=[
            {"kind": "email_customer", "params": {"template": "address-confirmed"}},
            {
                "kind": "webhook",
                "params": {
                    "url": "https://hooks.example.com/crm/address-changed",
                    "payload": {"ticket": "T-881", "channel": "email", "note": "Customer confirmed by phone"},
                },
            },
        ],
    )
    login("lead", "lead")
    page.goto(f"/review/{proposal.pk}/")
    page.wait_for_load_state("networkidle")
    follow_ups = page.get_by_role("region", name="Follow-ups")
    assert "m•••@example.com" in follow_ups.inner_text()
    assert "https://hooks.example.com/crm/address-changed" in follow_ups.inner_text()
    viewport = page.evaluate("window.innerHeight")
    assert page.evaluate("document.documentElement.scrollHeight") <= viewport
    for element in (follow_ups.get_by_text("Subject:"), follow_ups.get_by_label("JSON body")):
        box = element.bounding_box()
        assert box is not None and box["y"] < viewport
    box = page.get_by_role("button", name="Approve").bounding_box()
    assert box is not None and box["y"] + box["height"] <= viewport

    # On a phone they stack above the decision, as wide as the screen, rather than squeezed beside it.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_load_state("networkidle")
    box = page.get_by_role("region", name="Follow-ups").bounding_box()
    approve = page.get_by_role("button", name="Approve").bounding_box()
    assert box is not None and approve is not None
    assert box["x"] >= 0 and box["width"] > 300 and box["x"] + box["width"] <= 390
    assert box["y"] + box["height"] <= approve["y"]
