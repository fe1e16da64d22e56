"""A rollback drill's page reads on a phone and on a laptop: the verdict, each phase against the
workflow's rollback target, and the report, with nothing scrolling sideways."""

import pytest
from playwright.sync_api import expect

from approvals.undo.drill import rollback_drill_run
from tests.helpers.factories import FieldPolicyFactory, UserFactory, WorkflowFactory

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}


def test_the_drill_page_reads_on_a_phone_and_a_laptop(transactional_db, page, login):  # type: ignore[no-untyped-def]
    owner = UserFactory(username="owner", password="owner")
    workflow = WorkflowFactory(slug="address-updates-from-the-support-tickets-of-november", owner=owner)
    FieldPolicyFactory(workflow=workflow, field="shipping_address", access="suggest")
    drill = rollback_drill_run(records=3, say=lambda line: None, workflow=workflow)
    login("owner", "owner")
    for size in (PHONE, DESKTOP):
        page.set_viewport_size(size)
        page.goto(f"/drills/rollback/{drill.pk}/")
        expect(page.get_by_role("heading", name=f"Rollback drill {drill.pk}: passed")).to_be_visible()
        expect(page.get_by_role("status")).to_contain_text("within the rollback target")
        expect(page.get_by_role("cell", name="stop + undo + check")).to_be_visible()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= size["width"], f"the page is {width} px wide on a {size['width']} px screen"
