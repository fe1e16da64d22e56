"""The timed trace drill in a browser: a lead is given only a complaint, finds the change through the
record's timeline and its trace page in another tab, answers, and sees the drill passed or failed."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from approvals.models import TraceDrill
from records.store import RecordRef
from tests.helpers.factories import CustomerFactory, GroupFactory, UserFactory, WorkflowFactory
from tests.helpers.trace_drills import applied_change
from tests.helpers.trail import apply_update

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def drill_ready(transactional_db):  # type: ignore[no-untyped-def]
    """A lead who sees address-updates, whose one applied change Sam approved yesterday; the same
    customer's priority changed since by another workflow, and another customer changed too."""
    leads = GroupFactory(name="support-leads")
    workflow = WorkflowFactory(slug="address-updates", name="Address updates", approver_group=leads)
    for permission in ("approvals.view_workflow", "approvals.review_workflow"):
        assign_perm(permission, leads, workflow)
    lead = UserFactory(username="lead", password="lead", first_name="Dana", last_name="Lee")
    lead.groups.add(leads)
    sam = UserFactory(username="sam", password="sam", first_name="Sam", last_name="Okafor")
    yesterday = timezone.now() - timedelta(days=1)
    change = applied_change(workflow=workflow, approver=sam, at=yesterday)
    apply_update(
        RecordRef("customer", change.record_id),
        {"priority": "high"},
        at=yesterday + timedelta(hours=1),
        workflow_slug="priority-triage",
    )
    other = CustomerFactory(record_id="CUS-10043")
    apply_update(RecordRef("customer", other.record_id), {"priority": "urgent"}, at=yesterday)
    return workflow


def _start_drill(page, login) -> str:  # type: ignore[no-untyped-def]
    login("lead", "lead")
    page.goto("/workflows/address-updates/trace-drill/")
    page.get_by_role("button", name="Start trace drill").click()
    page.wait_for_url(re.compile(r"/drills/trace/\d+/$"))
    expect(page.get_by_role("timer", name="Time taken")).to_have_text(re.compile(r"^0:0\d$"))
    return page.locator("blockquote.complaint").inner_text()


def _find_in_another_tab(page, complaint: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """What the trail says of the change the complaint is about, read from the app's own pages."""
    record_id = re.search(r"CUS-\d+", complaint).group(0)  # type: ignore[union-attr]
    tab = page.context.new_page()
    tab.goto("/records/")
    tab.get_by_role("searchbox", name="Record id").fill(record_id)
    tab.get_by_role("button", name="Find").click()
    tab.wait_for_url(f"**/records/customer/{record_id}/")
    events = tab.get_by_role("region", name="Events")
    events.locator("tr", has_text="shipping address").get_by_role("link", name="Trace change").click()
    tab.wait_for_url("**/trace/change/**")
    summary = tab.get_by_label("Summary").inner_text()
    before, after = re.search(r"changed shipping address from '(.+?)' to '(.+?)'", summary).groups()  # type: ignore[union-attr]
    found = {
        "change": tab.url,
        "before": before,
        "after": after,
        "approver": tab.locator(".approver").inner_text(),
        "model": tab.locator(".model").inner_text(),
        "prompt": tab.locator(".prompt").inner_text(),
        "undo": tab.get_by_role("link", name="Undo this change").get_attribute("href") or "",
    }
    tab.close()
    return found


def _answer(page, found: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label("Which change was it?").fill(found["change"])
    page.get_by_label("What did its shipping address hold before?").fill(found["before"])
    page.get_by_label("What did the change set its shipping address to?").fill(found["after"])
    page.get_by_label("Who approved it?").fill(found["approver"])
    page.get_by_label("Which model made it?").fill(found["model"])
    page.get_by_label("Which prompt version?").fill(found["prompt"])
    page.get_by_label("How would you undo it?").fill(found["undo"])
    page.get_by_role("button", name="Send answers").click()
    page.wait_for_load_state()


def test_a_lead_traces_the_complaint_through_the_app_and_passes(page, login, drill_ready):
    complaint = _start_drill(page, login)
    assert re.fullmatch(
        r"Customer CUS-10042 says their shipping address changed (yesterday \w+|early yesterday morning|last night)\.",
        complaint,
    ), complaint

    found = _find_in_another_tab(page, complaint)
    _answer(page, found)

    result = page.get_by_role("region", name="Result")
    expect(result.get_by_role("heading", level=2)).to_have_text("Passed")
    expect(result).to_contain_text("Every answer was right.")
    expect(result).to_contain_text("within the target of 5 minutes")
    assert result.locator("td", has_text="wrong").count() == 0
    drill = TraceDrill.objects.get()
    assert drill.passed is True and drill.answers["approver"] == "Sam Okafor"


def test_a_wrong_answer_fails_and_the_page_says_which(page, login, drill_ready):
    found = _find_in_another_tab(page, _start_drill(page, login))

    _answer(page, found | {"approver": "Dana Lee"})

    result = page.get_by_role("region", name="Result")
    expect(result.get_by_role("heading", level=2)).to_have_text("Failed")
    expect(result).to_contain_text("Wrong: Who approved it?")
    row = result.locator("tr", has_text="Who approved it?")
    expect(row.locator(".drill-result")).to_have_text("wrong")
    expect(row).to_contain_text("Sam Okafor")  # what the trail holds
    assert TraceDrill.objects.get().passed is False


def test_the_drill_reads_on_a_phone(page, login, drill_ready):
    page.set_viewport_size(PHONE)
    _start_drill(page, login)

    expect(page.get_by_role("button", name="Send answers")).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
