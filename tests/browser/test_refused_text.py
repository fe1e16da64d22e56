"""A stored value holding refused text reads as its escape in the trail, and wraps instead of widening it."""

import pytest
from django.db import connection

from audit.services import Actor, audit_record
from tests.helpers.factories import FieldPolicyFactory, UserFactory, WorkflowFactory

pytestmark = pytest.mark.browser

# PostgreSQL never held a lone surrogate; a bidirectional control it did.
HELD = "\udfff\u202e" if connection.vendor == "sqlite" else "\u202e\u2066"


def record_tags(tags: list[str]) -> None:
    audit_record(
        action="change.applied",
        actor=Actor.worker("worker@test"),
        record_type="customer",
        record_id="CUS-10432",
        field="tags",
        old_value=[],
        new_value=tags,
        workflow_slug="address-updates",
    )


def table_width(page) -> int:  # type: ignore[no-untyped-def]
    page.goto("/trail/")
    return int(page.locator("table.events").evaluate("table => table.scrollWidth"))


def test_the_trail_shows_refused_text_escaped_and_as_wide_as_before(page, login, transactional_db):
    workflow = WorkflowFactory(slug="address-updates", owner=UserFactory(username="lead", password="lead"))
    FieldPolicyFactory(workflow=workflow, record_type="customer", field="tags", access="write")  # else withheld
    record_tags(["vip"])
    login("lead", "lead")
    page.set_viewport_size({"width": 390, "height": 844})
    clean = table_width(page)
    record_tags(["vip" + HELD * 4])
    assert table_width(page) <= clean
    escapes = "".join(f"\\u{ord(character):04x}" for character in HELD) * 4
    assert page.get_by_text(f"vip{escapes}").is_visible()
    page.set_viewport_size({"width": 1366, "height": 768})
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
