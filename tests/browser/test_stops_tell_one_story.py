"""What a person sees of stops and overrides: a compact banner that leaves the review screen on one
screen, Release only for those who may, and an override counting down while writes pass."""

import pytest
from playwright.sync_api import expect

from approvals.models import OverrideBlock, OverrideScope, ProposalStatus, StopScope
from approvals.overrides.services import override_grant
from approvals.stops.services import stop_engage
from audit.services import Actor
from tests.helpers.factories import CustomerFactory, OrderFactory, ProposalFactory, TicketFactory
from tests.helpers.overrides import REASON, after_hours_now

pytestmark = pytest.mark.browser


@pytest.fixture
def on_call(transactional_db):  # type: ignore[no-untyped-def]
    """After hours whatever the clock says: the leads approve and engage stops; ops is on duty."""
    on_call = after_hours_now()
    on_call.ops.first_name, on_call.ops.last_name = "Sam", "Okafor"
    on_call.ops.save()
    return on_call


def _three_stops(on_call) -> None:  # type: ignore[no-untyped-def]
    stop_engage(
        scope=StopScope.WORKFLOW,
        workflow=on_call.workflow,
        reason="Checking every address the sweep wrote since the prompt change went out this afternoon",
        actor=Actor.user(on_call.lead),
        user=on_call.lead,
    )
    for name in ("Nightly address sweep from support tickets", "Weekend address sweep"):
        stop_engage(
            scope=StopScope.BATCH,
            batch=on_call.batch(name=name),
            reason=f"{name}: the pipeline halted it after a run of bad postcodes",
            actor=Actor.system("pipeline"),
        )


def _twelve_field_merge(on_call):  # type: ignore[no-untyped-def]
    def customer(name: str):  # type: ignore[no-untyped-def]
        return CustomerFactory(
            full_name=name,
            email=f"{name.split()[0].lower()}@example.com",
            phone="+44 131 496 0000",
            shipping_address="Flat 3/2, 14 Great Junction Street, Leith, Edinburgh EH6 5LA",
            billing_status="ok",
            account_status="verified",
            verified=True,
            priority="high",
            sentiment="negative",
            tags=["vip", "late-parcel"],
            support_notes="Prefers email. Called about a late parcel in October.",
            internal_notes="Long-standing customer since 2019.",
        )

    survivor, duplicate = customer("Margaret Robertson"), customer("Margaret Robertson-Hay")
    for _ in range(2):
        OrderFactory(customer=duplicate)
        TicketFactory(customer=duplicate)
    on_call.workflow.actions = ["update", "merge"]
    on_call.workflow.save(update_fields=["actions"])
    return ProposalFactory(
        workflow=on_call.workflow,
        action="merge",
        record_id=duplicate.record_id,
        merge_into=survivor.record_id,
        changes={},
        base={},
        requested_by="agent",
        requested_by_user=on_call.agent,
        reason="Same person: the same email and phone on both profiles, and ticket T-881 asks to merge them.",
    )


def test_three_stops_fold_into_one_line_and_the_twelve_field_merge_still_fits_1366_by_768(page, login, on_call):
    _three_stops(on_call)
    proposal = _twelve_field_merge(on_call)
    login("lead", "lead")
    page.goto(f"/review/{proposal.pk}/")
    page.wait_for_load_state("networkidle")

    banner = page.get_by_role("alert").filter(has_text="stop switches engaged")
    expect(banner).to_contain_text("3 stop switches engaged — show")
    lines = banner.locator(".stop-line")
    expect(lines.first).to_be_hidden()
    viewport = page.evaluate("window.innerHeight")
    assert viewport == 768
    assert page.evaluate("document.documentElement.scrollHeight") <= viewport
    assert page.evaluate("document.documentElement.scrollWidth") <= page.evaluate("window.innerWidth")
    for name in ("Approve", "Reject"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None and box["y"] + box["height"] <= viewport, name

    banner.get_by_text("show").click()
    expect(lines).to_have_count(3)
    for index in range(3):
        line = lines.nth(index)
        expect(line).to_be_visible()
        box = line.bounding_box()
        assert box is not None and box["height"] < 40, "each stop is one line"
    expect(banner).to_contain_text("hide")
    expect(banner.get_by_role("button", name="Release")).to_have_count(0)  # after hours the lead may not


def test_release_is_offered_only_to_those_who_may_use_it(page, login, on_call):
    stop_engage(
        scope=StopScope.WORKFLOW,
        workflow=on_call.workflow,
        reason="Checking the addresses",
        actor=Actor.user(on_call.lead),
        user=on_call.lead,
    )
    login("lead", "lead")
    banner = page.get_by_role("alert").filter(has_text="Stopped:")
    expect(banner).to_contain_text("workflow address-updates")
    expect(banner.get_by_role("button", name="Release")).to_have_count(0)
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_visible()  # a lead still engages

    page.context.clear_cookies()
    login("ops", "ops")
    banner = page.get_by_role("alert").filter(has_text="Stopped:")
    banner.get_by_role("button", name="Release").click()
    page.get_by_role("main").get_by_role("button", name="Release").click()
    expect(page.get_by_role("alert").filter(has_text="Stopped:")).to_have_count(0)


def test_an_override_that_lets_writes_pass_counts_down_in_the_banner(page, login, on_call):
    batch = on_call.batch(name="Weekend address sweep")
    on_call.proposal(batch=batch, status=ProposalStatus.APPROVED)
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad postcodes", actor=Actor.system("pipeline"))
    override_grant(
        user=on_call.ops,
        block=OverrideBlock.STOP_SWITCH,
        scope=OverrideScope.BATCH,
        reason=REASON,
        minutes=1,
        workflow=on_call.workflow,
        batch=batch,
    )
    # The page's clock is one the test moves on, so the minute of the override passes without being waited out.
    page.clock.install()
    login("lead", "lead")
    banner = page.get_by_role("alert").filter(has_text="Stop overridden:")
    expect(banner).to_contain_text("overridden by Sam Okafor for 1 more minute: writes pass")
    expect(banner).not_to_contain_text("No write in it is applied")
    countdown = banner.locator(".countdown")
    # The banner counts the override down on its own: not ended ten seconds before the minute is up, and at
    # the end it says the stop holds again.
    page.clock.run_for(50_000)
    expect(countdown).to_have_text("for 1 more minute: writes pass")
    page.clock.run_for(11_000)
    expect(countdown).to_have_text("until just now: the override has ended and the stop holds again")
