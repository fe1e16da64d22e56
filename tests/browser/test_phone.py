"""On a phone (390x844): no page scrolls sideways, and what a person acts on is large enough to tap.

Ops managers handle after-hours overrides from wherever they are; on a desktop nothing moves.
"""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from approvals.models import Proposal, ProposalStatus, StopScope, StopSwitch
from approvals.stops.services import stop_engage
from audit.services import Actor
from records.store import RecordRef
from tests.helpers.factories import BatchFactory, GroupFactory, ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.overrides import after_hours_now
from tests.helpers.trail import apply_update

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}
TAP = 44  # CSS pixels a finger needs, each way


def assert_no_sideways_scrolling(page) -> None:  # type: ignore[no-untyped-def]
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide on a {PHONE['width']} px phone"


def assert_tappable(locator) -> None:  # type: ignore[no-untyped-def]
    """On screen, not cut off at either side, and at least 44x44."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    name = locator.inner_text().strip()
    assert box["width"] >= TAP and box["height"] >= TAP, f"{name!r} is {box['width']:.0f}x{box['height']:.0f}"
    assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], f"{name!r} is off the screen: {box}"


@dataclass
class Night:
    stop: StopSwitch
    waiting: Proposal
    conflict: Proposal
    applied: Proposal


@pytest.fixture
def on_call(transactional_db) -> Night:  # type: ignore[no-untyped-def]
    """After hours, ops on duty: a batch held by a stop, a proposal waiting for the daytime approvers,
    a proposal in conflict, and a change on a record's timeline."""
    on_call = after_hours_now()
    on_call.ops.is_staff = True  # the longest top bar: every page, the admin, Stop and Release
    on_call.ops.save(update_fields=["is_staff"])
    sweep = on_call.batch(name="Weekend address sweep from the support tickets of the whole of November")
    on_call.proposal(batch=sweep)
    stop = stop_engage(
        scope=StopScope.BATCH, batch=sweep, reason="The address parser timed out twice", actor=Actor.user(on_call.lead)
    )
    applied = on_call.proposal(status=ProposalStatus.APPLIED)
    apply_update(
        RecordRef("customer", applied.record_id),
        {"shipping_address": "Flat 14, The Old Granary, 145 Commercial Quay, Leith, Edinburgh EH6 6LX"},
        at=timezone.now() - timedelta(minutes=5),
        proposal=applied,
    )
    return Night(
        stop=stop,
        waiting=on_call.proposal(status=ProposalStatus.PENDING),
        conflict=on_call.proposal(
            status=ProposalStatus.CONFLICT,
            base={"shipping_address": "Flat 2, 7 Shore Road, Leith, Edinburgh EH6 6QW"},
        ),
        applied=applied,
    )


def test_the_top_bar_wraps_on_a_phone_with_every_page_stop_and_log_out_on_screen(page, login, on_call):
    page.set_viewport_size(PHONE)
    login("ops", "ops")
    for path in (
        "/review/",
        "/records/",
        f"/records/customer/{on_call.applied.record_id}/",
        "/workflows/",
        "/map/",
        "/trail/",
        "/blocked/",
        "/undo/",
        "/overrides/review/",
    ):
        page.goto(path)
        assert_no_sideways_scrolling(page)
        top_bar = page.locator("header.topbar")
        for name in ("Review", "Records", "Workflows", "Map", "Trail", "Blocked", "Admin"):
            assert_tappable(top_bar.get_by_role("navigation", name="Main").get_by_role("link", name=name))
        assert_tappable(top_bar.get_by_role("button", name="Stop"))
        assert_tappable(top_bar.get_by_role("button", name="Log out"))
        expect(top_bar.get_by_text("ops", exact=True)).to_be_in_viewport(ratio=1)
        assert_tappable(page.get_by_role("alert").filter(has_text="Stopped:").get_by_role("button", name="Release"))


def test_ops_overrides_a_stop_from_blocked_on_a_phone(page, login, on_call, queued):
    page.set_viewport_size(PHONE)
    login("ops", "ops")
    page.goto("/blocked/")
    assert_no_sideways_scrolling(page)
    stop_row = page.locator(f"#stop-{on_call.stop.pk}")
    for row in (
        stop_row,
        page.locator(f"#proposal-{on_call.waiting.pk}"),
        page.locator(f"#proposal-{on_call.conflict.pk}"),
    ):
        assert_tappable(row.get_by_role("button", name="Override"))

    stop_row.get_by_role("button", name="Override").click()
    page.get_by_label("Reason").wait_for()
    assert_no_sideways_scrolling(page)
    assert_tappable(page.get_by_role("button", name="Grant override"))
    page.get_by_label("Reason").fill("Parser fixed and checked on ten records; letting the sweep through")
    page.get_by_role("button", name="Grant override").click()
    page.wait_for_url("**/blocked/")
    banner = page.get_by_role("status").filter(has_text="Override active")
    expect(banner).to_contain_text("Parser fixed")
    assert_tappable(banner.get_by_role("button", name="Revoke"))
    expect(stop_row).to_contain_text("Overridden until")
    assert_no_sideways_scrolling(page)


def test_the_review_screen_of_a_waiting_proposal_offers_ops_an_override_they_can_tap(page, login, on_call):
    page.set_viewport_size(PHONE)
    login("ops", "ops")
    page.goto(f"/review/{on_call.waiting.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(on_call.waiting.record_id)
    assert_no_sideways_scrolling(page)
    assert_tappable(page.get_by_role("link", name="Override"))


@pytest.fixture
def lead_reviews(transactional_db):  # type: ignore[no-untyped-def]
    leads = GroupFactory(name="support-leads")
    workflow = WorkflowFactory(slug="address-updates", approver_group=leads)
    assign_perm("approvals.review_workflow", leads, workflow)
    UserFactory(username="lead", password="lead").groups.add(leads)
    batch = BatchFactory(workflow=workflow, name="Nightly address sweep from support tickets")
    return [
        ProposalFactory(
            workflow=workflow,
            batch=batch,
            changes={"shipping_address": "Flat 14, The Old Granary, 145 Commercial Quay, Leith, Edinburgh EH6 6LX"},
            reason="Customer wrote in ticket T-801: 'please send everything to the Old Granary from now on'",
            created_at=timezone.now() - timedelta(minutes=minutes),
        )
        for minutes in (3, 2)
    ]


def test_the_review_screen_fits_a_phone_with_approve_and_reject_large_enough_to_tap(page, login, lead_reviews):
    first, _ = lead_reviews
    page.set_viewport_size(PHONE)
    login("lead", "lead")
    page.goto("/review/")
    assert_no_sideways_scrolling(page)
    # The queue is wider than a phone: it scrolls in its own box, which a keyboard can reach.
    expect(page.locator("table.queue")).to_have_attribute("tabindex", "0")

    page.goto(f"/review/{first.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(first.record_id)
    assert_no_sideways_scrolling(page)
    for name in ("Approve", "Reject"):
        assert_tappable(page.get_by_role("button", name=name))
    expect(page.get_by_label("Reason for rejecting")).to_be_in_viewport()


def test_on_a_desktop_the_keyboard_goes_through_the_top_bar_in_the_same_order_and_no_table_takes_a_stop(
    page, login, lead_reviews
):
    login("lead", "lead")
    page.goto("/review/")
    expect(page.locator("table.queue a.open")).to_have_count(2)
    reached = []
    for _ in range(10):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.textContent.trim()"))
    # The person's name leads to their notice preferences.
    top = ["Countersign", "Review", "Records", "Workflows", "Map", "Trail", "Blocked", "Stop", "lead", "Log out"]
    assert reached == top
    expect(page.locator("main table[tabindex]")).to_have_count(0)

    page.set_viewport_size(PHONE)
    expect(page.locator("table.queue")).to_have_attribute("tabindex", "0")
    page.set_viewport_size(DESKTOP)
    expect(page.locator("main table[tabindex]")).to_have_count(0)
