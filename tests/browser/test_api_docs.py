"""A new pipeline developer opens /api/v1/docs, authorises with a token and reads a record from the page."""

import pytest

from approvals.intake.accounts import service_account_create
from approvals.models import FieldPolicy
from audit.services import Actor
from tests.helpers.factories import CustomerFactory, WorkflowFactory

pytestmark = pytest.mark.browser


def test_try_the_api_from_its_docs(page, live_server, transactional_db):
    workflow = WorkflowFactory(slug="address-updates")
    FieldPolicy.objects.create(workflow=workflow, record_type="customer", field="full_name", access="read")
    CustomerFactory(record_id="CUS-10432", full_name="Maria Lopez")
    token = service_account_create(workflow=workflow, name="docs", actor=Actor.system()).token
    outside: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(live_server.url) else outside.append(request.url))

    page.goto("/api/v1/docs")
    page.get_by_text("Countersign pipeline API").first.wait_for()
    assert page.locator(".opblock-summary-path", has_text="/api/v1/proposals").first.is_visible()

    page.get_by_role("button", name="Authorize").first.click()
    page.get_by_label("auth-bearer-value").fill(token)
    page.get_by_role("button", name="Apply credentials").click()
    page.locator(".modal-ux").get_by_role("button", name="Close").click()

    operation = page.locator(".opblock-get", has_text="/api/v1/records/{record_type}/{record_id}")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.locator("tr[data-param-name=record_type] input").fill("customer")
    operation.locator("tr[data-param-name=record_id] input").fill("CUS-10432")
    operation.get_by_role("button", name="Execute").click()
    body = operation.locator(".responses-wrapper .live-responses-table .response-col_description pre").first
    body.wait_for()
    assert "Maria Lopez" in body.inner_text()
    assert '"version": 1' in body.inner_text()
    assert outside == []
