"""The map in a browser: one click on a field shows who can touch it, the filter form works without
JavaScript, a phone reads it without the page scrolling sideways, and on paper only the map prints."""

import pytest
from playwright.sync_api import expect

from approvals.models import Stage
from tests.helpers.axe import assert_no_serious_violations
from tests.helpers.factories import FieldPolicyFactory, UserFactory, WorkflowFactory

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}


def _workflow(slug, owner, policies, **attributes):
    workflow = WorkflowFactory(slug=slug, owner=owner, **attributes)
    for name, access in policies.items():
        record_type, _, field = name.partition(".")
        FieldPolicyFactory(workflow=workflow, record_type=record_type, field=field, access=access)
    return workflow


@pytest.fixture
def owner(transactional_db):  # type: ignore[no-untyped-def]
    owner = UserFactory(username="owner", password="owner")
    _workflow(
        "refund-notes",
        owner,
        {"customer.billing_status": "suggest", "customer.full_name": "read", "order.refund_status": "suggest"},
        name="Refund status and notes from order emails",
        stage=Stage.CANARY,
        systems=[{"name": "Billing", "direction": "both", "fields": ["customer.billing_status"]}],
        outside_services=[
            {
                "name": "Hosted model API",
                "kind": "model_api",
                "region": "eu-west",
                "keeps": "30d",
                "sees": ["customer.full_name", "customer.billing_status"],
            }
        ],
    )
    _workflow(
        "address-updates",
        owner,
        {"customer.shipping_address": "suggest", "customer.priority": "write", "customer.email": "read"},
        name="Address updates from support tickets",
        systems=[
            {"name": "Help desk", "direction": "to_ai", "fields": ["ticket.subject"]},
            {"name": "CRM", "direction": "from_ai", "fields": ["customer.shipping_address", "customer.email"]},
        ],
        outside_services=[
            {
                "name": "Tracing and evaluation service",
                "kind": "observability",
                "region": "us-east",
                "keeps": "7d",
                "sees": ["customer.shipping_address", "customer.email"],
            }
        ],
    )
    _workflow("ticket-triage", owner, {"ticket.priority": "write", "ticket.subject": "read"}, name="Ticket triage")
    return owner


def _shown(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [heading.get_attribute("id") for heading in page.locator("section.map-workflow h2").all()]


def test_one_click_on_a_field_shows_only_the_workflows_that_touch_it(page, login, owner):
    page.set_viewport_size(DESKTOP)
    login("owner", "owner")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Map").click()
    page.wait_for_url("**/map/")
    assert _shown(page) == ["map-address-updates", "map-refund-notes", "map-ticket-triage"]
    assert_no_serious_violations(page)

    page.get_by_role("link", name="customer.billing_status").first.click()
    page.wait_for_url("**/map/?field=customer.billing_status")
    assert _shown(page) == ["map-refund-notes"]
    expect(page.get_by_role("status")).to_contain_text(
        "1 of 3 workflows you may see matches field customer.billing_status"
    )
    marked = page.locator("tr.match")
    expect(marked).to_have_count(3)  # its policy, the system that carries it, the service that sees it
    expect(marked.first).to_contain_text("customer.billing_status (matches the filter)")
    assert_no_serious_violations(page)

    page.get_by_role("main").get_by_role("link", name="Clear filter").first.click()
    assert len(_shown(page)) == 3


def test_the_filter_form_narrows_by_system_and_service(page, login, owner):
    login("owner", "owner")
    page.goto("/map/")
    form = page.get_by_role("form", name="Filter the map")
    form.get_by_label("System").select_option("CRM")
    form.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/map/?system=CRM**")
    assert _shown(page) == ["map-address-updates"]
    marked = page.locator("tr.match")
    expect(marked).to_have_count(1)
    for cell in ("CRM (matches the filter)", "← from the AI", "customer.shipping_address, customer.email"):
        expect(marked).to_contain_text(cell)

    form = page.get_by_role("form", name="Filter the map")
    form.get_by_label("System").select_option("")
    form.get_by_label("Outside service").select_option("Hosted model API")
    form.get_by_label("Field").select_option("customer.email")
    form.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("status")).to_contain_text(
        "No workflow you may see matches field customer.email and outside service Hosted model API."
    )
    assert _shown(page) == []


def test_on_a_phone_the_map_does_not_scroll_sideways(page, login, owner):
    page.set_viewport_size(PHONE)
    login("owner", "owner")
    for path in ("/map/", "/map/?field=customer.email"):
        page.goto(path)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width} px wide on a {PHONE['width']} px phone"
        button = page.get_by_role("button", name="Filter")
        expect(button).to_be_in_viewport()
        box = button.bounding_box()
        assert box is not None and box["height"] >= 44


def test_on_paper_only_the_map_is_printed(page, login, owner):
    login("owner", "owner")
    page.goto("/map/?field=customer.email")
    page.emulate_media(media="print")
    for hidden in (page.locator("header.topbar"), page.get_by_role("form", name="Filter the map")):
        expect(hidden).to_be_hidden()
    expect(page.get_by_role("link", name="Export as CSV")).to_be_hidden()
    expect(page.locator("section.map-workflow")).to_have_count(1)
    color = page.locator("section.map-workflow td a").first.evaluate("a => getComputedStyle(a).color")
    assert color == "rgb(0, 0, 0)"  # links read as the text around them
    assert page.pdf(format="A4").startswith(b"%PDF")
