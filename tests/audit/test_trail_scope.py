"""The trail as each person may see it: the events of their workflows, with the values of fields
those workflows do not cover withheld; exporting it needs its own right, a window of at most 31 days,
and is itself recorded on the trail."""

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import Actor, audit_record
from tests.helpers.factories import UserFactory
from tests.helpers.seeing import make_auditor, make_exporter
from tests.helpers.two_workflows import A_MARK, B_MARK, NOBODY_MARK, TwoWorkflows, two_workflows


@pytest.fixture
def world(db) -> TwoWorkflows:  # type: ignore[no-untyped-def]
    return two_workflows()


def _window(days: float = 1) -> dict[str, str]:
    now = timezone.now()
    return {"since": (now - timedelta(days=days)).isoformat(), "until": (now + timedelta(minutes=5)).isoformat()}


def _streamed(response: StreamingHttpResponse) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()  # type: ignore[arg-type]


def _a_event_naming_a_field_a_does_not_cover(world: TwoWorkflows) -> AuditEvent:
    return audit_record(
        action="proposal.conflict",
        actor=Actor.worker("w/1"),
        record_type="customer",
        record_id=world.customer.record_id,
        old_value={"shipping_address": "4 Old Mill Lane, Leith", "internal_notes": f"{NOBODY_MARK} before"},
        new_value={"shipping_address": f"{A_MARK} 9 Quay", "internal_notes": f"{NOBODY_MARK} after"},
        workflow_slug=world.a.workflow.slug,
        details={"current": {"internal_notes": f"{NOBODY_MARK} now"}, "version": 3},
    )


def test_the_lead_of_a_sees_a_s_events_only_with_other_fields_withheld(client, world):
    event = _a_event_naming_a_field_a_does_not_cover(world)
    audit_record(action="login.failed", actor=Actor.system("mallory"))  # names no workflow
    client.force_login(world.people["lead"])
    html = client.get(reverse("trail")).content.decode()
    assert f'id="event-{event.pk}"' in html and A_MARK in html
    assert B_MARK not in html and NOBODY_MARK not in html and "mallory" not in html
    assert '<span class="field-name">internal notes</span>: <del>(withheld)</del> → <ins>(withheld)</ins>' in html
    shown = [int(pk) for pk in re.findall(r'<tr id="event-(\d+)"', html)]
    assert {e.workflow_slug for e in AuditEvent.objects.filter(pk__in=shown)} == {world.a.workflow.slug}


def test_a_superuser_in_no_group_sees_no_event_and_an_auditor_sees_every_one(client, world):
    audit_record(action="login.failed", actor=Actor.system("mallory"))
    client.force_login(world.people["root"])
    assert 'id="event-' not in client.get(reverse("trail")).content.decode()
    client.force_login(world.people["auditor"])
    html = client.get(reverse("trail")).content.decode()
    assert A_MARK in html and B_MARK in html and "mallory" in html


def test_exporting_needs_the_export_right_given_through_a_group(client, world):
    refusals = [world.people["root"], world.people["lead"], make_auditor(UserFactory(), export=False)]
    for person in refusals:
        client.force_login(person)
        for name in ("trail-export-csv", "trail-export-json"):
            response = client.get(reverse(name), _window())
            assert response.status_code == 403
            assert "needs the export_trail permission" in response.content.decode()
    assert not AuditEvent.objects.filter(action="trail.exported").exists()


@pytest.mark.parametrize(
    ("window", "problems"),
    [
        ({}, ["From: Give the start of the window to export;", "Before: Give the end of the window to export;"]),
        ({"since": "2026-11-01T00:00"}, ["Before: Give the end of the window to export;"]),
        ({"since": "2026-11-01T00:00", "until": "2026-12-02T00:01"}, ["Before: The window is longer than 31 days"]),
        ({"since": "2026-11-02T00:00", "until": "2026-11-01T00:00"}, ["Before: Must be later than From."]),
    ],
)
def test_an_export_needs_a_window_of_at_most_31_days_naming_the_field(client, world, window, problems):
    client.force_login(world.people["auditor"])
    response = client.get(reverse("trail-export-csv"), window)
    assert response.status_code == 400
    text = response.content.decode()
    assert text.startswith("The export was not made.")
    for problem in problems:
        assert problem in text
    assert "since:" not in text and "until:" not in text  # the form's words, not the code's field names
    assert not AuditEvent.objects.filter(action="trail.exported").exists()


def test_a_31_day_window_is_exported(client, world):
    client.force_login(world.people["auditor"])
    window = {"since": "2026-11-01T00:00", "until": "2026-12-02T00:00"}
    response = client.get(reverse("trail-export-json"), window)
    assert response.status_code == 200
    assert json.loads(_streamed(response)) == []


def test_an_export_is_recorded_with_who_the_filter_and_the_rows_the_file_holds(client, world):
    client.force_login(world.people["auditor"])
    window = _window()
    response = client.get(reverse("trail-export-csv"), {"workflow": world.b.workflow.slug, **window})
    rows = list(csv.DictReader(io.StringIO(_streamed(response))))
    assert rows and {row["workflow_slug"] for row in rows} == {world.b.workflow.slug}
    exported = AuditEvent.objects.get(action="trail.exported")
    assert (exported.actor_kind, exported.actor_label) == ("user", "auditor")
    assert exported.details["rows"] == len(rows)
    assert exported.details["format"] == "csv"
    assert exported.details["filter"]["workflow_slug"] == world.b.workflow.slug
    assert set(exported.details["filter"]) == {"workflow_slug", "since", "until"}
    assert exported.details["workflows"] == "every workflow"
    assert max(int(row["id"]) for row in rows) <= exported.details["up_to_event"] < exported.pk


def test_events_appended_while_an_export_streams_are_not_in_it_nor_in_its_count(client, world):
    client.force_login(world.people["auditor"])
    response = client.get(reverse("trail-export-json"), {"workflow": world.a.workflow.slug, **_window()})
    counted = AuditEvent.objects.get(action="trail.exported").details["rows"]
    late = _a_event_naming_a_field_a_does_not_cover(world)
    events = json.loads(_streamed(response))
    assert len(events) == counted
    assert late.pk not in {event["id"] for event in events}


def test_a_lead_who_may_export_gets_only_a_s_events_with_other_fields_withheld(client, world):
    event = _a_event_naming_a_field_a_does_not_cover(world)
    client.force_login(make_exporter(world.people["lead"]))
    csv_text = _streamed(client.get(reverse("trail-export-csv"), _window()))
    json_text = _streamed(client.get(reverse("trail-export-json"), _window()))
    for text in (csv_text, json_text):
        assert A_MARK in text and B_MARK not in text and NOBODY_MARK not in text
    exported = {row["id"]: row for row in json.loads(json_text)}[event.pk]
    assert exported["old_value"] == {"shipping_address": "4 Old Mill Lane, Leith", "internal_notes": "(withheld)"}
    assert exported["details"] == {"current": {"internal_notes": "(withheld)"}, "version": 3}
    recorded = AuditEvent.objects.filter(action="trail.exported").order_by("id")
    assert [e.details["workflows"] for e in recorded] == [[world.a.workflow.slug]] * 2


def test_the_trail_page_offers_the_export_to_those_who_may_and_asks_for_a_window(client, world):
    client.force_login(world.people["lead"])
    assert "Export this trail" not in client.get(reverse("trail")).content.decode()
    client.force_login(world.people["auditor"])
    html = client.get(reverse("trail")).content.decode()
    assert "To export this trail, choose its window with From and Before, at most 31 days apart." in html
    html = client.get(reverse("trail"), {"since": "2026-11-01T00:00", "until": "2026-11-30T00:00"}).content.decode()
    assert "Export this trail:" in html and "each export is recorded in the trail" in html


def _outside_edit(record_type: str, record_id: str, before: dict, after: dict) -> AuditEvent:  # type: ignore[type-arg]
    seen = timezone.now() - timedelta(hours=2)
    return audit_record(
        action="record.changed_outside",
        actor=Actor.system("the system of record"),
        record_type=record_type,
        record_id=record_id,
        old_value=before,
        new_value=after,
        details={
            "seen_at": seen.isoformat(),
            "found_at": timezone.now().isoformat(),
            "version_seen": 3,
            "version_found": 4,
        },
    )


def test_an_edit_made_in_the_system_of_record_shows_to_whoever_sees_its_record_type(client, world):
    """No workflow made it, yet the lead of A, who sees customers' addresses, must see that one changed
    there, with the fields A does not cover withheld; B's order is not theirs to see."""
    customer_edit = _outside_edit(
        "customer",
        world.customer.record_id,
        {"shipping_address": "4 Old Mill Lane, Leith", "internal_notes": f"{NOBODY_MARK} before"},
        {"shipping_address": f"{A_MARK} 1 Quay Street", "internal_notes": f"{NOBODY_MARK} after"},
    )
    order_edit = _outside_edit(
        "order", world.order.record_id, {"refund_status": "requested"}, {"refund_status": f"{B_MARK} paid"}
    )
    client.force_login(world.people["lead"])

    timeline = client.get(reverse("record-timeline", args=["customer", world.customer.record_id])).content.decode()
    assert "Changed outside Countersign" in timeline
    assert f"{A_MARK} 1 Quay Street" in timeline and NOBODY_MARK not in timeline

    trail = client.get(reverse("trail")).content.decode()
    assert f'id="event-{customer_edit.pk}"' in trail
    assert f'id="event-{order_edit.pk}"' not in trail and B_MARK not in trail
