"""From the review screen of a proposal that waits on a block, the group on duty overrides it with the
same form the Blocked page uses, and comes back to the proposal."""

import pytest
from playwright.sync_api import expect

from approvals.models import Override, StopScope
from approvals.stops.services import stop_engage
from audit.services import Actor
from tests.helpers.overrides import REASON, after_hours_now
from tests.helpers.queued import Queued

pytestmark = pytest.mark.browser


def test_ops_overrides_the_stop_holding_an_approved_proposal_from_its_review_screen(
    page, login, transactional_db, queued
):
    on_call = after_hours_now()
    batch = on_call.batch(name="address sweep")
    held = on_call.proposal(batch=batch)
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt in the sweep", actor=Actor.user(on_call.lead))

    login("ops", "ops")
    page.goto(f"/review/{held.pk}/")
    decision = page.get_by_role("region", name="Decision")
    expect(decision).to_contain_text("Not written yet: stopped (batch")
    expect(decision).to_contain_text("bad prompt in the sweep")
    decision.get_by_role("link", name="Override").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Override")
    expect(page.get_by_text(f"for proposal {held.pk}")).to_be_visible()
    page.get_by_label("Reason").fill(REASON)
    page.get_by_role("button", name="Grant override").click()
    page.wait_for_url(f"**/review/{held.pk}/")

    expect(decision).to_contain_text("It will be written shortly")
    expect(decision.get_by_role("link", name="Override")).to_have_count(0)
    override = Override.objects.get()
    assert (override.block, override.scope, override.proposal_id, override.granted_by) == (
        "stop_switch",
        "proposal",
        held.pk,
        on_call.ops,
    )
    assert Queued("approvals.apply_approved", [[held.pk]]) in queued


def test_the_lead_off_duty_sees_what_holds_it_and_no_override(page, login, transactional_db):
    on_call = after_hours_now()
    batch = on_call.batch(name="address sweep")
    held = on_call.proposal(batch=batch)
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt in the sweep", actor=Actor.user(on_call.lead))
    login("lead", "lead")
    page.goto(f"/review/{held.pk}/")
    decision = page.get_by_role("region", name="Decision")
    expect(decision).to_contain_text("bad prompt in the sweep")
    expect(page.get_by_role("link", name="Override")).to_have_count(0)
