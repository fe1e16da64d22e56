"""The notice preferences page in a browser: reached from one's name, saved, readable on a phone."""

from datetime import time

import pytest
from playwright.sync_api import expect

from approvals.models import UserNoticePrefs
from tests.helpers.axe import assert_no_serious_violations
from tests.helpers.factories import UserFactory

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}])
def test_a_lead_chooses_what_to_be_emailed_and_their_quiet_hours(page, login, transactional_db, viewport):
    lead = UserFactory(username="lead", password="lead", email="lead@example.com")
    page.set_viewport_size(viewport)
    login("lead", "lead")
    page.get_by_role("link", name="lead").click()
    page.wait_for_url("**/account/notices/")
    expect(page.get_by_role("heading", name="Notice preferences")).to_be_visible()
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth)"
        ".map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))"
    )
    assert not wide, f"wider than the screen: {wide}"
    assert_no_serious_violations(page)

    page.get_by_label("Email me of these events").check()
    page.get_by_label("A stop switch engaged").check()
    page.get_by_label("From").fill("22:00")
    page.get_by_label("To", exact=True).fill("07:00")
    page.get_by_label("Time zone").fill("Europe/London")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_text("Notice preferences saved.")).to_be_visible()

    prefs = UserNoticePrefs.objects.get(user=lead)
    assert prefs.email_on and "stop_engaged" in prefs.events
    assert (prefs.quiet_from, prefs.quiet_to, prefs.timezone) == (time(22), time(7), "Europe/London")
    expect(page.get_by_label("From")).to_have_value("22:00")
