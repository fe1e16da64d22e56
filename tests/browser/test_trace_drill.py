"""The trace drill: from a customer id to who approved its change, which model and prompt made it, and why."""

from datetime import UTC, datetime, timedelta

import pytest

from records.store import RecordRef
from tests.helpers.browser import settled_context
from tests.helpers.factories import CustomerFactory, ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.seeing import make_auditor
from tests.helpers.trail import apply_update

pytestmark = pytest.mark.browser

APPROVED_AT = datetime(2026, 11, 27, 14, 14, 7, tzinfo=UTC)


def _applied_change() -> str:
    make_auditor(UserFactory(username="ops", password="ops", first_name="Sam", last_name="Okafor"))
    dana = UserFactory(username="lead", password="lead", first_name="Dana", last_name="Lee")
    customer = CustomerFactory(record_id="CUS-10432", full_name="Ada Byron", shipping_address="4 Old Mill Lane")
    CustomerFactory(record_id="CUS-10433")
    proposal = ProposalFactory(
        workflow=WorkflowFactory(slug="address-updates"),
        record_id=customer.record_id,
        changes={"shipping_address": "12 Harbour Road"},
        base={"shipping_address": "4 Old Mill Lane"},
        reason="Customer asked for the new address in ticket T-881",
        status="approved",
        decided_by=dana,
        approved_at=APPROVED_AT,
        decided_at=APPROVED_AT,
    )
    apply_update(
        RecordRef("customer", customer.record_id),
        {"shipping_address": "12 Harbour Road"},
        at=APPROVED_AT + timedelta(seconds=2),
        proposal=proposal,
        approver_label="Dana Lee",
        decided_at=APPROVED_AT,
    )
    apply_update(RecordRef("customer", customer.record_id), {"priority": "high"}, at=APPROVED_AT + timedelta(hours=2))
    return str(customer.record_id)


def test_from_a_customer_id_to_approver_model_prompt_and_reason_in_three_clicks(page, login, transactional_db):
    record_id = _applied_change()
    login("ops", "ops")
    clicks = 0

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Records").click()
    clicks += 1
    page.get_by_role("searchbox", name="Record id").fill(record_id.lower())
    page.get_by_role("button", name="Find").click()
    clicks += 1
    page.wait_for_url(f"**/records/customer/{record_id}/")
    assert page.get_by_role("heading", level=1).inner_text() == f"Customer {record_id} · Ada Byron"

    page.locator("tr", has_text="shipping address").get_by_role("link", name="Trace change").click()
    clicks += 1
    summary = page.get_by_label("Summary").inner_text()

    assert clicks <= 3
    assert "Approved by Dana Lee" in summary
    assert "gpt-x 2026-10-01" in summary
    assert "prompt address-update@7" in summary
    assert "reason: Customer asked for the new address in ticket T-881" in summary
    assert "changed shipping address from '4 Old Mill Lane' to '12 Harbour Road'" in summary
    assert page.locator(".undo-command").inner_text().startswith("manage.py rollback --change ")


def test_what_happened_at_2_14_pm_in_the_viewers_zone(chromium, live_server, transactional_db):
    record_id = _applied_change()
    with settled_context(chromium, live_server.url, timezone_id="Europe/Berlin") as context:
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto("/login/")
        page.get_by_label("Username").fill("ops")
        page.get_by_label("Password").fill("ops")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        page.goto(f"/records/customer/{record_id}/")
        assert "times in Europe/Berlin" in page.locator("main").inner_text()
        # 14:14:07 UTC is 15:14:07 in Berlin; the picker is read in the viewer's zone
        page.get_by_label("State at").fill("2026-11-27T15:15:00")
        page.get_by_role("button", name="Show state").click()
        section = page.locator("section.state-at")
        section.wait_for()
        assert "As it was at 2026-11-27 15:15:00.000" in section.inner_text()
        assert section.locator('td[data-field="shipping_address"]').inner_text() == "12 Harbour Road"
        assert section.locator('td[data-field="priority"]').inner_text() == "normal"
        around = section.inner_text().split("Around that moment")[1]
        assert around.index("15:14:09.000") > around.index("▲ after")  # the address change, just before the moment
        assert around.index("17:14:07.000") < around.index("▲ after")  # the priority change, after it


def test_filters_swap_the_events_in_place(page, login, transactional_db):
    record_id = _applied_change()
    login("ops", "ops")
    page.goto(f"/records/customer/{record_id}/")
    assert page.locator("table.events tbody tr").count() == 2
    page.get_by_label("Field").select_option("priority")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**field=priority**")
    assert page.locator("#timeline").count() == 1
    assert page.locator("table.events tbody tr").count() == 1
    assert "priority: normal → high" in page.locator("table.events").inner_text()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Trail").click()
    page.get_by_label("Approver").fill("Dana Lee")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**approver=Dana%20Lee**")
    assert page.locator("#results").count() == 1
    assert page.locator("table.events tbody tr").count() == 1
