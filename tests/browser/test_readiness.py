"""The readiness page in a browser: the owner finds it from the workflows page, reads each check and
promotes the workflow once ready; on a phone the page does not scroll sideways."""

import pytest

from tests.browser.test_phone import DESKTOP, PHONE, assert_no_sideways_scrolling, assert_tappable
from tests.helpers.readiness import ready_workflow

pytestmark = pytest.mark.browser


def test_the_owner_reads_the_checks_and_promotes_the_workflow_to_live(page, login, transactional_db):
    ready_workflow()
    page.set_viewport_size(DESKTOP)
    login("owner", "owner")
    page.goto("/workflows/")
    page.get_by_role("link", name="Readiness").click()

    main = page.get_by_role("main")
    assert "Readiness: Address Updates" in main.inner_text()
    rows = page.locator("table.readiness-checks tbody tr")
    assert rows.count() == 9
    assert rows.nth(5).locator(".check-result").inner_text() == "Pass"
    promote = main.get_by_role("button", name="Promote to live")
    assert promote.bounding_box()["y"] < 2 * DESKTOP["height"]
    promote.click()

    assert "address-updates moved to Live." in page.get_by_role("status").inner_text()
    assert "is in Live since" in main.inner_text()
    assert main.get_by_role("button", name="Promote to").count() == 0


def test_the_readiness_page_fits_a_phone(page, login, transactional_db):
    on_call = ready_workflow()
    on_call.workflow.trace_drills.all().delete()
    page.set_viewport_size(PHONE)
    login("owner", "owner")
    page.goto("/workflows/address-updates/readiness/")

    assert_no_sideways_scrolling(page)
    assert "Moving to live waits for check 7 to pass." in page.get_by_role("main").inner_text()
    assert_tappable(page.get_by_role("link", name="Retention rules and what is stored"))
