"""The map (`/map/`): every workflow a person may see, its fields, systems and outside services,
narrowed by a system, a field or a service, and the same as CSV."""

import csv
import io
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.models import Lane, Stage
from approvals.readiness.map import MapFilter, data_map
from tests.helpers.factories import FieldPolicyFactory, GroupFactory, UserFactory, WorkflowFactory
from tests.helpers.seeing import let_see, make_auditor

DEMO_FILE = Path(__file__).resolve().parents[3] / "approvals" / "demo" / "workflows.yaml"

REFUNDS_SERVICE = {
    "name": "Hosted model API",
    "kind": "model_api",
    "region": "eu-west",
    "keeps": "30d",
    "sees": ["customer.full_name"],
}
TRACING = {
    "name": "Tracing",
    "kind": "observability",
    "region": "us-east",
    "keeps": "7d",
    "sees": ["customer.shipping_address"],
}


def _workflow(slug, owner, policies, **attributes):
    workflow = WorkflowFactory(slug=slug, owner=owner, **attributes)
    for name, access in policies.items():
        record_type, _, field = name.partition(".")
        FieldPolicyFactory(workflow=workflow, record_type=record_type, field=field, access=access)
    return workflow


@pytest.fixture
def owner(db):
    owner = UserFactory(username="owner", password="owner")
    _workflow(
        "refund-notes",
        owner,
        {"customer.billing_status": "suggest", "customer.full_name": "read", "order.refund_status": "suggest"},
        name="Refund notes",
        stage=Stage.CANARY,
        systems=[{"name": "Billing", "direction": "both", "fields": ["customer.billing_status"]}],
        outside_services=[REFUNDS_SERVICE],
    )
    _workflow(
        "address-updates",
        owner,
        {"customer.shipping_address": "suggest", "customer.priority": "write"},
        name="Address updates",
        systems=[
            {"name": "Help desk", "direction": "to_ai", "fields": ["ticket.subject"]},
            {"name": "CRM", "direction": "from_ai", "fields": ["customer.shipping_address"]},
        ],
        outside_services=[TRACING],
    )
    _workflow("ticket-triage", owner, {"ticket.priority": "write"}, name="Ticket triage", lane=Lane.WRITE)
    return owner


def _slugs(shown) -> list[str]:
    return [entry.workflow.slug for entry in shown.workflows]


def _fresh(user: User) -> User:
    """The user as a new request reads it, without the scope an earlier call kept on the object."""
    return User.objects.get(pk=user.pk)


def _page(client, user, **query) -> str:
    client.force_login(user)
    response = client.get(reverse("map"), query)
    assert response.status_code == 200
    return response.content.decode()


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_owner_sees_every_workflow_with_its_fields_systems_stores_and_services(client, owner):
    html = _page(client, owner)
    text = _text(html)
    for slug in ("address-updates", "refund-notes", "ticket-triage"):
        assert f'id="map-{slug}"' in html
    assert "Stage: Canary" in text
    assert "Lane: Write (proposes changes)" in text
    assert "Record stores: customer: built-in store; order: built-in store" in text
    assert "Help desk → to the AI ticket.subject" in text
    assert "CRM ← from the AI customer.shipping_address" in text
    assert "Billing ↔ both ways customer.billing_status" in text
    assert "Hosted model API Model API eu-west 30d customer.full_name" in text
    assert "customer.billing_status suggest financial" in text
    assert '<a href="/map/" aria-current="page">Map</a>' in html


def test_each_name_is_a_link_that_filters_by_it(client, owner):
    html = _page(client, owner)
    assert '<a href="?field=customer.billing_status">customer.billing_status</a>' in html
    assert '<a href="?system=Help%20desk">Help desk</a>' in html
    assert '<a href="?service=Hosted%20model%20API">Hosted model API</a>' in html


def test_a_person_sees_only_the_workflows_in_their_sight(client, owner):
    lead = let_see(UserFactory(username="lead"), WorkflowFactory._meta.model.objects.get(slug="address-updates"))
    assert _slugs(data_map(user=lead)) == ["address-updates"]
    html = _page(client, lead)
    assert "address-updates" in html
    assert "refund-notes" not in html
    assert "Billing" not in html and "Hosted model API" not in html and "billing_status" not in html
    assert "No workflows you may see." in _page(client, UserFactory(username="agent"))


def test_auditors_and_ops_managers_see_every_workflow(owner):
    auditor = make_auditor(UserFactory(username="auditor"), export=False)
    ops = UserFactory(username="ops")
    ops.groups.add(GroupFactory(name="ops-managers"))
    everything = ["address-updates", "refund-notes", "ticket-triage"]
    assert _slugs(data_map(user=auditor)) == everything
    assert _slugs(data_map(user=ops)) == everything


def test_who_can_touch_billing_status_is_the_field_filter(client, owner):
    shown = data_map(user=owner, map_filter=MapFilter(field="billing_status"))
    assert _slugs(shown) == ["refund-notes"]
    (entry,) = shown.workflows
    assert [field.name for field in entry.fields if field.matched] == ["customer.billing_status"]
    assert [system.name for system in entry.systems if system.matched] == ["Billing"]
    assert not any(service.matched for service in entry.services)

    text = _text(_page(client, owner, field="customer.billing_status"))
    assert "1 of 3 workflows you may see matches field customer.billing_status" in text
    assert "customer.billing_status (matches the filter) suggest" in text
    assert "Address updates" not in text and "Ticket triage" not in text
    assert "Clear filter" in text


def test_a_bare_field_matches_it_on_every_record_type_and_a_named_one_only_its_own(owner):
    assert _slugs(data_map(user=owner, map_filter=MapFilter(field="priority"))) == ["address-updates", "ticket-triage"]
    assert _slugs(data_map(user=owner, map_filter=MapFilter(field="ticket.priority"))) == ["ticket-triage"]
    # A field a system carries or a service sees counts as touched, as well as one with a policy.
    assert _slugs(data_map(user=owner, map_filter=MapFilter(field="ticket.subject"))) == ["address-updates"]


def test_the_system_and_service_filters_keep_the_workflows_that_name_them(client, owner):
    by_system = data_map(user=owner, map_filter=MapFilter(system="crm"))
    assert _slugs(by_system) == ["address-updates"]
    assert [(s.name, s.matched) for s in by_system.workflows[0].systems] == [("Help desk", False), ("CRM", True)]
    by_service = data_map(user=owner, map_filter=MapFilter(service="Hosted model API"))
    assert _slugs(by_service) == ["refund-notes"]
    assert by_service.workflows[0].services[0].matched
    both = data_map(user=owner, map_filter=MapFilter(system="CRM", service="Hosted model API"))
    assert _slugs(both) == []
    html = _page(client, owner, system="Help desk")
    assert '<option value="Help desk" selected>Help desk</option>' in html
    assert "1 of 3 workflows you may see matches system Help desk" in _text(html)


def test_a_filter_nothing_matches_says_so_plainly(client, owner):
    text = _text(_page(client, owner, field="customer.shoe_size"))
    assert "No workflow you may see matches field customer.shoe_size." in text
    assert "map-customer" not in text


def test_the_filter_choices_name_everything_in_sight(owner):
    shown = data_map(user=owner, map_filter=MapFilter(system="CRM"))
    assert shown.systems == ("Billing", "CRM", "Help desk")
    assert shown.services == ("Hosted model API", "Tracing")
    assert "ticket.subject" in shown.fields and "customer.billing_status" in shown.fields
    assert shown.in_sight == 3


def test_a_stage_released_against_readiness_is_marked_with_its_reason_who_and_when(client, owner):
    WorkflowFactory._meta.model.objects.filter(slug="refund-notes").update(
        stage="live",
        forced_stage={
            "stage": "live",
            "reason": "Quarter-end refunds cannot wait for the drill",
            "by": "owner",
            "at": "2026-12-01T09:30:00+00:00",
        },
    )
    text = _text(_page(client, owner))
    assert (
        "Released against readiness to live by owner at 2026-12-01 09:30 UTC: "
        "“Quarter-end refunds cannot wait for the drill”" in text
    )
    assert text.count("Released against readiness") == 1
    # The mark lasts while the stage it was forced into fails its checks; moved on since, it is gone.
    WorkflowFactory._meta.model.objects.filter(slug="refund-notes").update(stage="canary")
    assert "Released against readiness" not in _text(_page(client, owner))


def test_the_csv_has_one_row_per_workflow_and_item(client, owner):
    client.force_login(owner)
    response = client.get(reverse("map-csv"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="countersign-map.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == [
        "workflow",
        "workflow_name",
        "lane",
        "stage",
        "released_against_readiness",
        "kind",
        "name",
        "access_or_direction",
        "service_kind",
        "fields",
        "region",
        "keeps",
        "store",
        "matches_filter",
    ]
    refunds = [row for row in rows if row["workflow"] == "refund-notes"]
    assert [(row["kind"], row["name"]) for row in refunds] == [
        ("field", "customer.billing_status"),
        ("field", "customer.full_name"),
        ("field", "order.refund_status"),
        ("system", "Billing"),
        ("outside_service", "Hosted model API"),
    ]
    service = refunds[-1]
    assert (service["service_kind"], service["region"], service["keeps"], service["fields"]) == (
        "model_api",
        "eu-west",
        "30d",
        "customer.full_name",
    )
    assert refunds[2]["store"] == "order: built-in"
    assert (refunds[0]["lane"], refunds[0]["stage"], refunds[0]["access_or_direction"]) == (
        "write",
        "canary",
        "suggest",
    )
    assert {row["matches_filter"] for row in rows} == {""}


def test_the_csv_honours_the_filter_and_marks_the_matching_rows(client, owner):
    client.force_login(owner)
    response = client.get(reverse("map-csv"), {"field": "priority"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {row["workflow"] for row in rows} == {"address-updates", "ticket-triage"}
    assert sorted(row["name"] for row in rows if row["matches_filter"] == "yes") == [
        "customer.priority",
        "ticket.priority",
    ]
    page = _page(client, owner, field="priority")
    assert f'href="{reverse("map-csv")}?field=priority"' in page


def test_the_csv_writes_a_would_be_formula_as_text(client, owner):
    _workflow(
        "formulas",
        owner,
        {"customer.full_name": "read"},
        name='=HYPERLINK("http://evil.example")',
        systems=[{"name": "+SUM(A1:A9)", "direction": "to_ai", "fields": ["customer.full_name"]}],
    )
    client.force_login(owner)
    rows = list(csv.DictReader(io.StringIO(client.get(reverse("map-csv")).content.decode())))
    formulas = [row for row in rows if row["workflow"] == "formulas"]
    assert {row["workflow_name"] for row in formulas} == {'\'=HYPERLINK("http://evil.example")'}
    assert [row["name"] for row in formulas if row["kind"] == "system"] == ["'+SUM(A1:A9)"]


def test_a_workflow_with_nothing_declared_still_has_its_row(client, owner):
    WorkflowFactory(slug="bare", owner=owner)
    client.force_login(owner)
    rows = list(csv.DictReader(io.StringIO(client.get(reverse("map-csv")).content.decode())))
    assert [(row["kind"], row["name"], row["store"]) for row in rows if row["workflow"] == "bare"] == [("", "", "")]


def _page_queries(client, name: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse(name)).status_code == 200
    return len(queries)


def test_the_map_takes_the_same_queries_whatever_the_number_of_workflows(client, owner, django_assert_num_queries):
    viewer = _fresh(owner)
    with django_assert_num_queries(5):
        assert len(data_map(user=viewer).workflows) == 3
    client.force_login(owner)
    client.get(reverse("map"))
    few = {name: _page_queries(client, name) for name in ("map", "map-csv")}
    for index in range(4):
        _workflow(
            f"more-{index}",
            owner,
            {"customer.email": "read", "order.amount": "read"},
            systems=[{"name": f"System {index}", "direction": "both", "fields": ["order.amount"]}],
            outside_services=[{**TRACING, "sees": ["customer.email"]}],
        )
    viewer = _fresh(owner)
    with django_assert_num_queries(5):
        assert len(data_map(user=viewer, map_filter=MapFilter(field="email")).workflows) == 4
    assert {name: _page_queries(client, name) for name in ("map", "map-csv")} == few


def test_signing_in_is_required(client, db):
    for name in ("map", "map-csv"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_demo_map_answers_who_touches_the_refund_status(db):
    owner = UserFactory(username="owner")
    UserFactory(username="ops")
    call_command(
        "load_workflows", str(DEMO_FILE), "--force-stage", "--reason", "The demo shows every stage", "--user", "owner"
    )
    assert _slugs(data_map(user=owner, map_filter=MapFilter(field="refund_status"))) == ["refund-notes"]
    assert _slugs(data_map(user=owner, map_filter=MapFilter(service="Customer embeddings"))) == ["duplicate-merge"]
    assert _slugs(data_map(user=owner, map_filter=MapFilter(system="Help desk"))) == [
        "address-updates",
        "reply-drafts",
        "ticket-triage",
    ]
