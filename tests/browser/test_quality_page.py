"""The quality page reads on a laptop and on a phone: each prompt version's charts drawn, its numbers
under them, nothing scrolling sideways, and no serious accessibility violation."""

import pytest
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from tests.helpers.axe import assert_no_serious_violations
from tests.helpers.factories import GroupFactory, UserFactory, WorkflowFactory
from tests.helpers.quality import day_at, decided

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}


def test_the_quality_page_reads_on_a_laptop_and_a_phone(transactional_db, page, login):  # type: ignore[no-untyped-def]
    leads = GroupFactory(name="support-leads")
    workflow = WorkflowFactory(
        slug="address-updates", name="Address updates from support tickets", approver_group=leads
    )
    assign_perm("approvals.view_workflow", leads, workflow)
    assign_perm("approvals.review_workflow", leads, workflow)
    lead = UserFactory(username="lead", password="lead")
    lead.groups.add(leads)
    for back in range(12):
        for n in range(4):
            status = "rejected" if n == 0 and back % 3 == 0 else "applied"
            note = "The customer never asked for this address change in the ticket." if status == "rejected" else ""
            decided(
                workflow,
                version="address-update@7",
                status=status,
                at=day_at(back, 9),
                waited_minutes=5 + n * back,
                by=lead,
                note=note,
            )
    decided(
        workflow,
        version="address-update@8-with-a-rather-long-prompt-version-name",
        status="conflict",
        at=day_at(1),
        waited_minutes=3,
        by=lead,
    )
    login("lead", "lead")
    for size in (DESKTOP, PHONE):
        page.set_viewport_size(size)
        page.goto(f"/workflows/{workflow.slug}/quality/")
        expect(page.get_by_role("heading", name="Quality: Address updates from support tickets")).to_be_visible()
        expect(page.get_by_role("img", name="Decisions per day, prompt version address-update@7")).to_be_visible()
        expect(
            page.get_by_role("img", name="Mean decision time per day, prompt version address-update@7")
        ).to_be_visible()
        expect(page.get_by_text("The customer never asked for this address change in the ticket.")).to_be_visible()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= size["width"], f"the page is {width} px wide on a {size['width']} px screen"
        box = page.get_by_role("img", name="Decisions per day, prompt version address-update@7").bounding_box()
        assert box is not None and box["width"] >= min(300, size["width"] - 80)
        assert_no_serious_violations(page)
    compared = page.get_by_role("table").first  # the versions side by side
    expect(compared).to_contain_text("address-update@7")
    expect(compared).to_contain_text("address-update@8-with-a-rather-long-prompt-version-name")
    page.get_by_text("The numbers per day").first.click()
    expect(page.locator(".quality-numbers table").first).to_contain_text("75.0%")
