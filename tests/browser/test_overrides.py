import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from approvals.models import WEEKDAYS, Override, StopScope
from approvals.stops.services import stop_engage
from audit.models import AuditEvent
from audit.services import Actor
from tests.helpers.overrides import on_call_workflow
from tests.helpers.queued import Queued
from tests.helpers.sight import settled

pytestmark = pytest.mark.browser

REASON = "Prompt fixed and checked on ten records; releasing this sweep"


def after_hours_now():
    """The leads work every day except today and tomorrow (UTC): whatever the clock says, it is
    after hours now, and stays so for the length of the test even across midnight."""
    today = datetime.now(UTC).weekday()
    days = [day for index, day in enumerate(WEEKDAYS) if index not in (today, (today + 1) % 7)]
    return on_call_workflow(override_days=days, override_timezone="UTC", override_max_minutes=120)


def test_ops_after_hours_overrides_a_halted_batch_and_sees_the_countdown(page, login, transactional_db, queued):
    on_call = after_hours_now()
    batch = on_call.batch(name="address sweep")
    held = [on_call.proposal(batch=batch) for _ in range(2)]
    switch = stop_engage(
        scope=StopScope.BATCH, batch=batch, reason="bad prompt in the sweep", actor=Actor.user(on_call.lead)
    )

    login("ops", "ops")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Blocked").click()
    row = page.locator(f"#stop-{switch.pk}")
    expect(row).to_contain_text("bad prompt in the sweep")
    row.get_by_role("button", name="Override").click()

    page.get_by_label("Reason").fill("because")
    page.get_by_label("Duration (minutes)").fill("30")
    page.get_by_role("button", name="Grant override").click()
    expect(page.locator("#reason-error")).to_have_text(
        "write at least 10 characters saying why this block should be lifted"
    )
    expect(page.get_by_text("reason:")).to_have_count(0)  # said once, next to the box, without the field's name
    assert not Override.objects.exists()

    page.get_by_label("Reason").fill(REASON)
    page.get_by_role("button", name="Grant override").click()
    page.wait_for_url("**/blocked/")

    banner = page.get_by_role("status").filter(has_text="Override active")
    expect(banner).to_contain_text(REASON)
    countdown = banner.locator(".countdown")
    expect(countdown).to_have_text(re.compile(r"^(30:00|29:[0-5]\d)$"))
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=3000)
    minutes, seconds = map(int, countdown.inner_text().split(":"))
    assert 28 * 60 < minutes * 60 + seconds < 30 * 60
    expect(row).to_contain_text("Overridden until")
    expect(row.get_by_role("button", name="Override")).to_have_count(0)

    override = Override.objects.get()
    assert (override.granted_by, override.batch, override.reason) == (on_call.ops, batch, REASON)
    assert timedelta(minutes=29) < override.expires_at - datetime.now(UTC) <= timedelta(minutes=30)
    assert AuditEvent.objects.filter(action="override.granted", batch_id=batch.pk, actor_label="ops").exists()
    applies = [item for item in queued if item.name != "approvals.deliver_notices"]  # the grant is told too
    assert applies == [Queued("approvals.apply_approved", [[p.pk for p in held]])]


def test_the_lead_after_hours_sees_the_block_but_no_override_button(page, login, transactional_db):
    on_call = after_hours_now()
    batch = on_call.batch(name="address sweep")
    on_call.proposal(batch=batch)
    switch = stop_engage(
        scope=StopScope.BATCH, batch=batch, reason="bad prompt in the sweep", actor=Actor.user(on_call.lead)
    )
    login("lead", "lead")
    page.goto("/blocked/")
    row = page.locator(f"#stop-{switch.pk}")
    expect(row).to_contain_text("ops-managers on duty")
    expect(page.get_by_role("button", name="Override")).to_have_count(0)


def test_the_countdown_ends_and_the_block_is_back_on_screen(page, login, transactional_db, queued):
    on_call = after_hours_now()
    batch = on_call.batch(name="address sweep")
    on_call.proposal(batch=batch)
    switch = stop_engage(
        scope=StopScope.BATCH, batch=batch, reason="bad prompt in the sweep", actor=Actor.user(on_call.lead)
    )
    from approvals.overrides.services import override_grant

    override = override_grant(user=on_call.ops, block="stop_switch", scope="batch", batch=batch, reason=REASON)
    login("ops", "ops")
    # Six seconds left once signed in: the page opens while the override still holds, the countdown
    # reaches zero in the browser and the list is fetched again.
    Override.objects.filter(pk=override.pk).update(expires_at=datetime.now(UTC) + timedelta(seconds=6))
    page.goto("/blocked/")
    row = page.locator(f"#stop-{switch.pk}")
    expect(row).to_contain_text("Overridden until")
    expect(row.get_by_role("button", name="Override")).to_be_visible(timeout=15000)
    expect(page.get_by_role("status").filter(has_text="Override active")).to_have_count(0)


def test_ops_after_hours_opens_a_waiting_proposal_from_blocked_overrides_it_and_approves(
    page, login, transactional_db, queued
):
    from approvals.models import Proposal, ProposalStatus
    from tests.helpers.overrides import after_hours_now as on_call_now

    on_call = on_call_now()
    waiting = on_call.proposal(status=ProposalStatus.PENDING)

    login("ops", "ops")
    page.goto("/blocked/")
    row = page.locator(f"#proposal-{waiting.pk}")
    row.get_by_role("link", name=f"Proposal {waiting.pk}").click()
    expect(page.get_by_role("note")).to_contain_text("You are on override duty")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)

    page.get_by_role("link", name="Override").click()
    page.get_by_label("Reason").fill(REASON)
    page.get_by_role("button", name="Grant override").click()
    page.wait_for_url(f"**/review/{waiting.pk}/")
    expect(page.get_by_role("note").filter(has_text="after-hours override")).to_contain_text(REASON)

    settled(page, waiting)
    page.keyboard.press("a")
    expect(page.get_by_role("status").filter(has_text="Approved the update")).to_be_visible()
    waiting.refresh_from_db()
    assert (waiting.status, waiting.decided_by) == (ProposalStatus.APPROVED, on_call.ops)
    assert AuditEvent.objects.filter(action="override.used", proposal_id=waiting.pk, actor_label="ops").exists()
    assert Queued("approvals.apply_approved", [[waiting.pk]]) in queued
    assert Proposal.objects.get(pk=waiting.pk).decided_by == on_call.ops
