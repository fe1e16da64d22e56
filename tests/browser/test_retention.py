from datetime import timedelta

import pytest
from playwright.sync_api import expect

from approvals.models import RetentionChange, RetentionChangeStatus, RetentionRule
from approvals.retention.services import retention_change_propose
from audit.models import AuditEvent
from tests.browser.test_phone import PHONE, assert_no_sideways_scrolling, assert_tappable
from tests.helpers.factories import ArtifactFactory, RetentionRuleFactory, UserFactory, WorkflowFactory

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1366, "height": 768}


def _two_owners():
    owner = UserFactory(username="owner", password="owner", first_name="Morgan", last_name="Hale")
    security = UserFactory(username="security", password="security", first_name="Sasha", last_name="Iyer")
    workflow = WorkflowFactory(slug="refund-notes", name="Refund notes", owner=owner, retention_co_owner=security)
    rule = RetentionRuleFactory(workflow=workflow, kind="prompt", bucket="live", window=timedelta(days=7))
    return owner, security, rule


def test_one_owner_proposes_and_the_other_countersigns(page, login, transactional_db):
    _owner, _security, rule = _two_owners()
    artifact = ArtifactFactory.create(rule=rule)
    login("owner", "owner")

    page.goto("/workflows/")
    page.get_by_role("link", name="Retention").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Retention: Refund notes"
    window = page.get_by_label("Keep prompt (live processing) for")
    assert window.input_value() == "7d"
    window.fill("2m")
    page.get_by_role("button", name="Propose").click()

    expect(page.get_by_role("status")).to_have_text(
        "Proposed: the prompt/live rule to keep artifacts for 2m. It keeps 7d until Sasha Iyer countersigns."
    )
    cell = page.locator('td[data-kind="prompt"][data-bucket="live"]')
    expect(cell).to_contain_text("7d in effect")
    expect(cell).to_contain_text("2m proposed by Morgan Hale, waiting for Sasha Iyer")
    expect(page.get_by_role("button", name="Countersign")).to_have_count(0)
    expect(page.get_by_role("button", name="Withdraw")).to_be_visible()
    assert RetentionRule.objects.get(pk=rule.pk).window == timedelta(days=7)

    page.get_by_role("button", name="Log out").click()
    login("security", "security")
    page.goto("/workflows/refund-notes/retention/")
    page.get_by_role("button", name="Countersign").click()

    expect(page.get_by_role("status")).to_have_text(
        "Countersigned: the prompt/live rule now keeps artifacts for 2m (proposed by Morgan Hale)."
    )
    expect(page.get_by_label("Keep prompt (live processing) for")).to_have_value("2m")
    expect(page.get_by_role("button", name="Countersign")).to_have_count(0)
    assert RetentionRule.objects.get(pk=rule.pk).window == timedelta(minutes=2)
    artifact.refresh_from_db()
    assert artifact.expires_at == artifact.created_at + timedelta(minutes=2)
    event = AuditEvent.objects.get(action="retention.changed")
    assert (event.details["proposed_by"], event.details["countersigned_by"]) == ("owner", "security")


def test_a_refused_window_is_explained_in_place(page, login, transactional_db):
    _two_owners()
    login("owner", "owner")

    page.goto("/workflows/refund-notes/retention/")
    page.get_by_label("Keep prompt (live processing) for").fill("9999d")
    page.get_by_role("button", name="Propose").click()

    # Said once, in the rule's own cell, next to what was typed.
    cell = page.locator('td[data-kind="prompt"][data-bucket="live"]')
    expect(cell.get_by_role("alert")).to_have_text("must be at most 3650d")
    expect(page.get_by_role("alert")).to_have_count(1)
    expect(cell.get_by_label("Keep prompt (live processing) for")).to_have_value("9999d")
    assert not RetentionChange.objects.exists()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_what_waits_reads_on_a_phone_and_a_laptop(page, login, transactional_db, viewport):
    owner, _security, rule = _two_owners()
    retention_change_propose(rule=rule, user=owner, window=timedelta(hours=1))
    page.set_viewport_size(viewport)
    login("security", "security")

    page.goto("/workflows/refund-notes/retention/")

    row = page.locator("table.waiting tbody tr")
    expect(row).to_contain_text("prompt/live")
    expect(row).to_contain_text("Morgan Hale")
    countersign = page.get_by_role("button", name="Countersign")
    reject = page.get_by_role("button", name="Reject")
    if viewport is PHONE:
        assert_no_sideways_scrolling(page)
        assert_tappable(countersign)
        assert_tappable(reject)
    else:
        assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
        expect(countersign).to_be_in_viewport()
    reject.click()
    expect(page.get_by_role("status")).to_have_text("Rejected: the change to the prompt/live rule. It still keeps 7d.")
    assert RetentionChange.objects.get().status == RetentionChangeStatus.WITHDRAWN
    assert RetentionRule.objects.get(pk=rule.pk).window == timedelta(days=7)
