import csv
import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.http import HttpResponseBase, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.applying.services import proposal_apply
from approvals.review.services import proposal_approve
from audit.models import AuditEvent
from audit.services import Actor, EventData, audit_record, audit_record_many, event_hash
from tests.helpers.factories import CustomerFactory, GroupFactory, ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.pages import error_messages
from tests.helpers.seeing import make_auditor

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
# An export covers a window of at most 31 days; this one holds the whole day of the trail below.
DAY = {"since": "2026-11-27T00:00", "until": "2026-11-28T00:00"}
CHANGE = uuid.UUID("5b1c2d3e-1111-4000-8000-000000000001")

# Every page shows the stop, override, store and audit banners: engaged stops, the viewer's stop rights,
# active overrides, stores that do not answer, whether the audit chain was found broken.
BANNERS = 5
# What the viewer may see: an auditor's groups say it is everything.
SCOPE = 1


@pytest.fixture
def staff(client, db):  # type: ignore[no-untyped-def]
    """An auditor who may export: they see every workflow's events."""
    client.force_login(make_auditor(UserFactory(username="owner")))
    return client


@pytest.fixture
def trail(db):  # type: ignore[no-untyped-def]
    worker = Actor.worker("w1")
    return {
        "approved": audit_record(
            action="proposal.approved",
            actor=Actor(kind="user", id="2", label="Dana Lee"),
            record_type="customer",
            record_id="CUS-10432",
            proposal_id=7,
            batch_id=3,
            workflow_slug="address-updates",
            prompt_version="address-update@7",
            occurred_at=T0 + timedelta(minutes=14),
        ),
        "applied": audit_record(
            action="change.applied",
            actor=worker,
            record_type="customer",
            record_id="CUS-10432",
            field="shipping_address",
            old_value="4 Old Mill Lane",
            new_value="12 Harbour Road",
            change_id=CHANGE,
            proposal_id=7,
            batch_id=3,
            workflow_slug="address-updates",
            model_name="gpt-x",
            model_version="2026-10-01",
            prompt_version="address-update@7",
            approver_label="Dana Lee",
            decided_at=T0 + timedelta(minutes=14),
            reason='=HYPERLINK("http://evil")',
            occurred_at=T0 + timedelta(minutes=14, seconds=9),
        ),
        "other": audit_record(
            action="change.applied",
            actor=worker,
            record_type="order",
            record_id="ORD-50001",
            field="refund_status",
            old_value="requested",
            new_value="approved",
            workflow_slug="refund-notes",
            prompt_version="refund@2",
            approver_label="Sam Okafor",
            occurred_at=T0 + timedelta(hours=3),
        ),
        "login": audit_record(
            action="login.failed", actor=Actor.system("mallory"), occurred_at=T0 + timedelta(hours=4)
        ),
    }


def _ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="event-(\d+)"', html)]


def test_trail_is_in_the_navigation_and_needs_a_login(client, staff, trail):
    html = staff.get(reverse("trail")).content.decode()
    assert f'<a href="{reverse("trail")}" aria-current="page">Trail</a>' in html
    staff.logout()
    for name in ("trail", "trail-export-csv", "trail-export-json"):
        response = staff.get(reverse(name))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["login", "other", "applied", "approved"]),
        ({"record": "CUS-10432"}, ["applied", "approved"]),
        ({"change": str(CHANGE)}, ["applied"]),
        ({"proposal": "7"}, ["applied", "approved"]),
        ({"batch": "3"}, ["applied", "approved"]),
        ({"workflow": "refund-notes"}, ["other"]),
        ({"prompt_version": "address-update@7"}, ["applied", "approved"]),
        ({"approver": "Dana Lee"}, ["applied", "approved"]),
        ({"approver": "Sam Okafor"}, ["other"]),
        ({"since": "2026-11-27T14:14:05", "until": "2026-11-27T17:30"}, ["other", "applied"]),
        ({"record": "CUS-10432", "since": "2026-11-27T14:14:05"}, ["applied"]),
    ],
)
def test_search_by_each_filter(staff, trail, query, expected):
    html = staff.get(reverse("trail"), query).content.decode()
    # Making the auditor a member of their group is on the trail too (access.granted); no filter here names it.
    shown = [pk for pk in _ids(html) if pk in {event.pk for event in trail.values()}]
    assert shown == [trail[name].pk for name in expected]
    others = AuditEvent.objects.filter(pk__in=set(_ids(html)) - set(shown))
    assert set(others.values_list("action", flat=True)) <= {"access.granted"}


def test_search_refuses_bad_input_naming_the_field(staff, trail):
    response = staff.get(reverse("trail"), {"change": "not-a-uuid", "batch": "x", "since": "soon"})
    assert response.status_code == 200
    html = response.content.decode()
    assert error_messages(html) == [
        "Enter the whole id, such as 0b7c8a4e-5a43-4b3a-9d3e-6d1f2b0e7c11.",
        "Enter a whole number, such as 12.",
        "Enter a date and time, such as 2026-11-27 14:00.",
        "Fix the search above to see the trail.",
    ]
    # each inside the label of its own field
    assert re.search(r"Change id\s*<input[^>]*>\s*<span class=\"error\" role=\"alert\">Enter the whole id", html)
    assert _ids(html) == []
    export = staff.get(reverse("trail-export-csv"), {"batch": "-4"})
    assert export.status_code == 400
    assert "Batch id: Enter 1 or more." in export.content.decode()


def test_search_pages_by_id_and_runs_a_fixed_number_of_queries(staff, db, django_assert_num_queries):
    actor = Actor.system("seed")
    audit_record_many([EventData(action="record.imported", actor=actor, record_id="CUS-1") for _ in range(3)])
    with django_assert_num_queries(3 + SCOPE + BANNERS):  # session, user, one page of events
        small = staff.get(reverse("trail"), {"record": "CUS-1"})
    audit_record_many([EventData(action="record.imported", actor=actor, record_id="CUS-1") for _ in range(117)])
    with django_assert_num_queries(3 + SCOPE + BANNERS):
        large = staff.get(reverse("trail"), {"record": "CUS-1"})
    assert len(_ids(small.content.decode())) == 3
    first = large.content.decode()
    assert len(_ids(first)) == 50
    seen = _ids(first)
    older = re.search(r'older_than=(\d+)" rel="next"', first)
    while older:
        with django_assert_num_queries(3 + SCOPE + BANNERS):
            html = staff.get(reverse("trail"), {"record": "CUS-1", "older_than": older.group(1)}).content.decode()
        assert "record=CUS-1&amp;older_than=" in html or not re.search(r'rel="next"', html)
        seen += _ids(html)
        older = re.search(r'older_than=(\d+)" rel="next"', html)
    assert len(seen) == len(set(seen)) == 120
    assert seen == sorted(seen, reverse=True)


def test_htmx_search_swaps_only_the_results(staff, trail):
    html = staff.get(reverse("trail"), {"workflow": "refund-notes"}, headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith('<section id="results"')
    assert _ids(html) == [trail["other"].pk]


def _streamed(response: HttpResponseBase) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return response.getvalue().decode()


def test_csv_export_streams_the_filtered_trail_oldest_first(staff, trail):
    response = staff.get(reverse("trail-export-csv"), {"record": "CUS-10432", **DAY})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="trail-')
    rows = list(csv.DictReader(io.StringIO(_streamed(response))))
    assert [int(r["id"]) for r in rows] == [trail["approved"].pk, trail["applied"].pk]
    applied = rows[1]
    assert applied["occurred_at"] == "2026-11-27T14:14:09.000+00:00"
    assert applied["change_id"] == str(CHANGE)
    assert applied["old_value"] == '"4 Old Mill Lane"'
    assert applied["approver_label"] == "Dana Lee"
    assert applied["prompt_version"] == "address-update@7"
    assert applied["reason"] == '\'=HYPERLINK("http://evil")'  # a spreadsheet shows it, never runs it
    assert applied["hash"] == trail["applied"].hash


def test_json_export_keeps_every_value_exactly_and_can_be_checked_against_the_chain(staff, trail):
    body = _streamed(staff.get(reverse("trail-export-json"), {"prompt_version": "address-update@7", **DAY}))
    events = json.loads(body)
    assert [e["id"] for e in events] == [trail["approved"].pk, trail["applied"].pk]
    first = events[1]
    assert first["reason"] == '=HYPERLINK("http://evil")'
    assert first["decided_at"] == "2026-11-27T14:14:00.000+00:00"
    stored = AuditEvent.objects.get(pk=first["id"])
    assert event_hash(stored) == first["hash"]
    assert first["prev_hash"] == stored.prev_hash


def test_an_empty_export_is_still_well_formed(staff, db):
    assert json.loads(_streamed(staff.get(reverse("trail-export-json"), {"record": "CUS-0", **DAY}))) == []
    assert (
        _streamed(staff.get(reverse("trail-export-csv"), {"record": "CUS-0", **DAY})).splitlines()[0].startswith("id,")
    )


def test_export_builds_each_event_only_as_it_is_sent(staff, db, monkeypatch):
    actor = Actor.system("seed")
    audit_record_many([EventData(action="record.imported", actor=actor, record_id="CUS-1") for _ in range(45)])
    built = []
    original = AuditEvent.from_db.__func__  # type: ignore[attr-defined]

    def counting_from_db(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        built.append(1)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(AuditEvent, "from_db", classmethod(counting_from_db))
    today = {"since": (timezone.now() - timedelta(hours=1)).isoformat(), "until": timezone.now().isoformat()}
    response = staff.get(reverse("trail-export-json"), today)
    chunks = iter(response.streaming_content)
    assert next(chunks) == b"["
    next(chunks), next(chunks)
    assert len(built) == 2  # two events sent, two read: the export never holds the whole trail
    rest = b"".join(chunks)
    # The 45, and the auditor's two access.granted events; the export's own trail.exported comes after them.
    assert len(built) == AuditEvent.objects.exclude(action="trail.exported").count() == 45 + 2
    assert rest.endswith(b"]\n")


def test_event_content_is_escaped(staff, db):
    audit_record(
        action="change.applied",
        actor=Actor(kind="user", id="1", label="<b>eve</b>"),
        record_type="customer",
        record_id="CUS-<i>1</i>",
        old_value={"support_notes": "<script>alert(1)</script>"},
        new_value={"support_notes": "fine"},
        reason='"><img src=x onerror=alert(2)>',
        workflow_slug="<svg>",
    )
    html = staff.get(reverse("trail")).content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<b>eve</b>" not in html and "<svg>" not in html and "<i>1</i>" not in html


@pytest.mark.parametrize("typed", ["Dana Lee", "dana lee", "lead"])
def test_an_approver_is_found_on_the_decision_and_on_the_write_by_name_or_username(staff, typed):
    leads = GroupFactory()
    workflow = WorkflowFactory(approver_group=leads)
    lead = UserFactory(username="lead", first_name="Dana", last_name="Lee")
    lead.groups.add(leads)
    assign_perm("approvals.review_workflow", leads, workflow)
    proposal = ProposalFactory(workflow=workflow, record_id=CustomerFactory().record_id)
    proposal_approve(proposal=proposal, reviewer=lead)
    proposal_apply(proposal_id=proposal.pk, worker="worker@test/1")
    UserFactory(username="sam", first_name="Sam", last_name="Okafor")

    html = staff.get(reverse("trail"), {"approver": typed}).content.decode()
    found = AuditEvent.objects.filter(pk__in=_ids(html)).order_by("id")
    assert [(e.action, e.approver_label) for e in found] == [
        ("proposal.approved", "Dana Lee"),
        ("change.applied", "Dana Lee"),
    ]
