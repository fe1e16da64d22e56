"""The circuit breaker as a lead meets it: the banner names it, the queue marks the prompt version, on a
desktop and on a phone, and the owner releases it from the banner."""

import os
from pathlib import Path

import pytest
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from approvals.models import StopSwitch
from approvals.review.services import proposal_reject
from tests.helpers.breaker import VERSION, history, set_breaker
from tests.helpers.factories import GroupFactory, ProposalFactory, UserFactory, WorkflowFactory

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}
# Set COUNTERSIGN_SCREENSHOTS to a folder to keep what the browser drew.
SHOTS = os.environ.get("COUNTERSIGN_SCREENSHOTS", "")


def shoot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_a_lead_sees_the_breaker_on_the_banner_and_the_queue_and_the_owner_releases_it(page, login, transactional_db):
    leads = GroupFactory(name="support-leads")
    owner = UserFactory(username="owner", password="owner")
    workflow = WorkflowFactory(slug="address-updates", approver_group=leads, owner=owner)
    for permission in ("approvals.review_workflow", "approvals.view_workflow"):
        assign_perm(permission, leads, workflow)
    lead = UserFactory(username="lead", password="lead")
    lead.groups.add(leads)
    set_breaker(workflow, max_reject_rate=0.2)
    history(workflow, approved=15, rejected=4)
    proposal_reject(
        proposal=ProposalFactory(workflow=workflow, prompt_version=VERSION), reviewer=lead, reason="wrong address"
    )
    tripped = [ProposalFactory(workflow=workflow, prompt_version=VERSION) for _ in range(2)]
    other = ProposalFactory(workflow=workflow, prompt_version="address-update@8")

    login("lead", "lead")
    for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.goto("/review/")
        banner = page.locator(".stop-banner")
        expect(banner).to_contain_text("engaged by the circuit breaker")
        expect(banner).to_contain_text("prompt version address-update@9 rejected at 25%, over its limit of 20%")
        for proposal in tripped:
            row = page.locator("tr[data-row]", has=page.locator(f'a[href^="/review/{proposal.pk}/"]'))
            expect(row).to_contain_text("breaker tripped for this prompt version")
        row = page.locator("tr[data-row]", has=page.locator(f'a[href^="/review/{other.pk}/"]'))
        expect(row).not_to_contain_text("breaker tripped")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= size["width"], f"the queue is {width} px wide at {size['width']} px"
        shoot(page, f"breaker-queue-{name}")

    page.set_viewport_size(DESKTOP)
    login("owner", "owner")
    page.goto("/workflows/")
    page.locator(".stop-banner").get_by_role("button", name="Release").click()
    page.get_by_label("Note (optional, kept in the trail)").fill("prompt version 9 withdrawn by the pipeline team")
    page.locator("#main").get_by_role("button", name="Release").click()
    expect(page.locator(".stop-banner")).to_have_count(0)
    assert StopSwitch.objects.get().released_by == owner
