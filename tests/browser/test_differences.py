"""A difference is never shown by colour alone: struck and underlined text, and words a screen reader reads."""

import re

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from approvals.demo.seed import DemoSeeded
from approvals.models import ProposalStatus
from records.store import RecordRef
from tests.helpers.demo import demo_after_hours, first_pending
from tests.helpers.factories import GroupFactory, ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.trail import apply_update

pytestmark = pytest.mark.browser


@pytest.fixture
def update_under_review(transactional_db):  # type: ignore[no-untyped-def]
    """A proposal to move a customer from 4 Old Mill Lane to 12 Harbour Road, and an earlier change of
    the same record on its timeline."""
    leads = GroupFactory(name="support-leads")
    workflow = WorkflowFactory(slug="address-updates", approver_group=leads)
    assign_perm("approvals.review_workflow", leads, workflow)
    UserFactory(username="lead", password="lead").groups.add(leads)
    earlier = ProposalFactory(workflow=workflow, status=ProposalStatus.APPLIED, changes={"priority": "high"})
    apply_update(RecordRef("customer", earlier.record_id), {"priority": "high"}, at=timezone.now(), proposal=earlier)
    return ProposalFactory(workflow=workflow, record_id=earlier.record_id)


def _spoken(page, selector: str) -> str:  # type: ignore[no-untyped-def]
    """The text Chromium hands a screen reader for the first element matching `selector`."""
    session = page.context.new_cdp_session(page)
    try:
        element = session.send("Runtime.evaluate", {"expression": f"document.querySelector({selector!r})"})
        texts = session.send(
            "Accessibility.queryAXTree", {"objectId": element["result"]["objectId"], "role": "StaticText"}
        )
    finally:
        session.detach()
    return re.sub(r"\s+", " ", "".join(node["name"]["value"] for node in texts["nodes"])).strip()


def test_a_difference_is_struck_and_underlined_and_a_screen_reader_hears_which_is_which(
    page, login, update_under_review
):
    login("lead", "lead")
    page.goto(f"/review/{update_under_review.pk}/")
    difference = page.locator("td.difference")
    removed, added = difference.locator("del"), difference.locator("ins")
    expect(removed.first).to_be_visible()
    for mark, line in ((removed, "line-through"), (added, "underline")):
        for element in mark.all():
            assert line in element.evaluate("e => getComputedStyle(e).textDecorationLine")
    assert _spoken(page, "td.difference") == (
        "removed: 4 added: 12 removed: Old added: Harbour removed: Mill Lane added: Road, Leith"
    )

    page.goto(f"/records/customer/{update_under_review.record_id}/")
    applied = page.locator("table.events tbody tr", has_text="change.applied")
    expect(applied.locator("del")).to_have_css("text-decoration-line", "line-through")
    expect(applied.locator("ins")).to_have_css("text-decoration-line", "underline")
    assert "priority: removed: normal → added: high" in _spoken(page, "table.events tbody tr td:nth-child(4)")


@pytest.fixture
def demo(transactional_db, queued) -> DemoSeeded:  # type: ignore[no-untyped-def]
    return demo_after_hours()


def test_a_merge_says_in_words_which_fields_differ_between_the_two_records(page, login, demo):
    login("lead", "lead")
    page.goto(f"/review/{first_pending(action='merge').pk}/")
    rows = page.get_by_role("table", name="Both records").locator("tbody tr")
    expect(rows.first).to_be_visible()
    for row in rows.all():
        duplicate, survivor = (cell.inner_text() for cell in row.locator("td").all()[:2])
        header = row.locator("th").inner_text()
        assert header.endswith("differs") == (duplicate != survivor), (header, duplicate, survivor)
