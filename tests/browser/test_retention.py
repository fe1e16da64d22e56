from datetime import timedelta

import pytest
from playwright.sync_api import expect

from approvals.models import RetentionRule
from audit.models import AuditEvent
from tests.helpers.factories import ArtifactFactory, RetentionRuleFactory, UserFactory, WorkflowFactory

pytestmark = pytest.mark.browser


def test_the_owner_shortens_a_rule_from_the_workflow_list(page, login, transactional_db):
    owner = UserFactory(username="owner", password="owner")
    workflow = WorkflowFactory(slug="refund-notes", name="Refund notes", owner=owner)
    rule = RetentionRuleFactory(workflow=workflow, kind="prompt", bucket="live", window=timedelta(days=7))
    artifact = ArtifactFactory.create(rule=rule)
    login("owner", "owner")

    page.goto("/workflows/")
    page.get_by_role("link", name="Retention").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Retention: Refund notes"
    window = page.get_by_label("Keep prompt (live processing) for")
    assert window.input_value() == "7d"
    window.fill("2m")
    page.get_by_role("button", name="Save").click()

    assert page.get_by_role("status").inner_text() == "The prompt/live rule now keeps artifacts for 2m."
    assert page.get_by_label("Keep prompt (live processing) for").input_value() == "2m"
    assert RetentionRule.objects.get(pk=rule.pk).window == timedelta(minutes=2)
    artifact.refresh_from_db()
    assert artifact.expires_at == artifact.created_at + timedelta(minutes=2)
    assert AuditEvent.objects.filter(action="retention.changed", actor_label="owner").count() == 1


def test_a_refused_window_is_explained_in_place(page, login, transactional_db):
    owner = UserFactory(username="owner", password="owner")
    workflow = WorkflowFactory(slug="refund-notes", name="Refund notes", owner=owner)
    RetentionRuleFactory(workflow=workflow, kind="prompt", bucket="live", window=timedelta(days=7))
    login("owner", "owner")

    page.goto("/workflows/refund-notes/retention/")
    page.get_by_label("Keep prompt (live processing) for").fill("9999d")
    page.get_by_role("button", name="Save").click()

    # Said once, in the rule's own cell, next to what was typed.
    cell = page.locator('td[data-kind="prompt"][data-bucket="live"]')
    expect(cell.get_by_role("alert")).to_have_text("must be at most 3650d")
    expect(page.get_by_role("alert")).to_have_count(1)
    expect(cell.get_by_label("Keep prompt (live processing) for")).to_have_value("9999d")
    assert RetentionRule.objects.get(workflow=workflow).window == timedelta(days=7)
