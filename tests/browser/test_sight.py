"""No approval without sight, as a reviewer meets it: a press lands on the proposal that was on screen,
never on the one that has just replaced it."""

from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from approvals.models import Proposal, ProposalStatus
from audit.models import AuditEvent
from tests.helpers.browser import settled_context
from tests.helpers.factories import GroupFactory, ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.sight import settled

pytestmark = pytest.mark.browser

HINT = "Look first: this proposal just appeared"


@pytest.fixture
def workflow(transactional_db):  # type: ignore[no-untyped-def]
    leads = GroupFactory(name="support-leads")
    workflow = WorkflowFactory(slug="address-updates", approver_group=leads)
    assign_perm("approvals.review_workflow", leads, workflow)
    UserFactory(username="lead", password="lead", first_name="Dana", last_name="Lee").groups.add(leads)
    return workflow


def queue(workflow, count: int) -> list[Proposal]:  # type: ignore[no-untyped-def]
    start = timezone.now() - timedelta(minutes=count + 1)
    return [ProposalFactory(workflow=workflow, created_at=start + timedelta(minutes=n)) for n in range(count)]


def statuses(*proposals: Proposal) -> list[str]:
    by_id = dict(Proposal.objects.filter(pk__in=[p.pk for p in proposals]).values_list("pk", "status"))
    return [by_id[p.pk] for p in proposals]


def on_screen(page, proposal: Proposal) -> None:  # type: ignore[no-untyped-def]
    """The proposal is painted, and every request the page sent has been answered."""
    page.locator(f"[data-proposal='{proposal.pk}']").wait_for()
    page.wait_for_load_state("networkidle")


def test_pressing_a_twice_150_ms_apart_decides_only_the_proposal_that_was_on_screen(page, login, workflow, queued):
    first, second, third = queue(workflow, 3)
    login("lead", "lead")
    page.goto(f"/review/{first.pk}/")
    settled(page, first)

    page.keyboard.press("a")
    page.wait_for_timeout(150)
    page.keyboard.press("a")

    on_screen(page, second)
    settled(page, second)  # long enough for a second decision to have landed, had one been sent
    page.wait_for_load_state("networkidle")
    assert statuses(first, second, third) == [ProposalStatus.APPROVED, ProposalStatus.PENDING, ProposalStatus.PENDING]
    assert second.record_id in page.get_by_role("heading", level=1).inner_text()
    assert AuditEvent.objects.filter(action="proposal.approved").count() == 1


def test_a_double_click_on_approve_decides_only_the_proposal_that_was_on_screen(page, login, workflow, queued):
    first, second, third = queue(workflow, 3)
    login("lead", "lead")
    page.goto(f"/review/{first.pk}/")
    settled(page, first)

    page.get_by_role("button", name="Approve").dblclick()

    on_screen(page, second)
    settled(page, second)
    page.wait_for_load_state("networkidle")
    assert statuses(first, second, third) == [ProposalStatus.APPROVED, ProposalStatus.PENDING, ProposalStatus.PENDING]

    # Two clicks 150 ms apart, where a hand puts them: the second lands on the Approve of the proposal
    # that has just appeared, and does nothing but say so.
    box = page.get_by_role("button", name="Approve").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(x, y)
    page.wait_for_timeout(150)
    page.mouse.click(x, y)
    on_screen(page, third)
    settled(page, third)
    page.wait_for_load_state("networkidle")
    assert statuses(first, second, third) == [ProposalStatus.APPROVED, ProposalStatus.APPROVED, ProposalStatus.PENDING]


def test_a_press_on_a_proposal_that_just_appeared_only_shows_a_hint(page, login, workflow, queued, monkeypatch):
    # A settle time long enough that the test is sure to press within it, however loaded the machine.
    monkeypatch.setattr("approvals.review.views.SETTLE_MS", 4000)
    first, second = queue(workflow, 2)
    login("lead", "lead")
    page.goto(f"/review/{first.pk}/")

    page.keyboard.press("a")
    expect(page.get_by_text(HINT)).to_be_visible()
    page.get_by_role("button", name="Approve").click()
    page.get_by_label("Reason for rejecting").fill("The ticket is about another customer")
    page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")
    assert statuses(first, second) == [ProposalStatus.PENDING, ProposalStatus.PENDING]
    assert first.record_id in page.get_by_role("heading", level=1).inner_text()
    expect(page.get_by_text(HINT)).to_have_count(0, timeout=5000)  # brief: it goes by itself

    settled(page, first)
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    on_screen(page, second)
    assert statuses(first, second) == [ProposalStatus.APPROVED, ProposalStatus.PENDING]


def test_a_key_that_went_down_before_the_proposal_was_painted_does_not_decide_it(page, login, workflow, queued):
    first, second = queue(workflow, 2)
    login("lead", "lead")
    page.goto(f"/review/{first.pk}/")
    settled(page, first)
    # The key goes down while the first proposal is on screen, and reaches the page only after the next
    # has been painted and has settled: its time is before the paint, so it decides nothing.
    page.evaluate("window.earlyKey = new KeyboardEvent('keydown', {key: 'a', bubbles: true})")
    page.keyboard.press("j")
    on_screen(page, second)
    settled(page, second)
    page.evaluate("document.body.dispatchEvent(window.earlyKey)")
    expect(page.get_by_text(HINT)).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert statuses(first, second) == [ProposalStatus.PENDING, ProposalStatus.PENDING]


def test_without_javascript_a_reviewer_who_reads_the_page_approves_it(chromium, live_server, workflow, queued):
    first, second = queue(workflow, 2)
    with settled_context(chromium, live_server.url, java_script_enabled=False) as context:
        page = context.new_page()
        page.goto("/login/")
        page.get_by_label("Username").fill("lead")
        page.get_by_label("Password").fill("lead")
        page.get_by_role("button", name="Log in").click()
        page.goto(f"/review/{first.pk}/")
        page.wait_for_timeout(600)  # reading it: the half second the server asks for
        page.get_by_role("button", name="Approve").click()
        page.wait_for_url(f"**/review/{second.pk}/")
        expect(page.get_by_role("status")).to_contain_text(f"Approved the update of {first.record_id}")
    assert statuses(first, second) == [ProposalStatus.APPROVED, ProposalStatus.PENDING]
