"""The map keys of the workflow file: the systems a workflow's data passes through and the outside
services that see it. Refusals name the workflow, the key and, for what a service sees, both."""

from datetime import timedelta
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals.models import Workflow
from approvals.workflows.loading import workflows_load
from audit.models import AuditEvent
from audit.services import Actor
from core.errors import ValidationFailed
from tests.helpers.factories import UserFactory

WORKFLOW: dict[str, Any] = {
    "slug": "address-updates",
    "name": "Address updates",
    "owner": "owner",
    "lane": "write",
    "stage": "draft",
    "approvers": "support-leads",
    "actions": ["update"],
    "fields": {
        "customer": {"full_name": "read", "shipping_address": "suggest", "priority": "write"},
        "ticket": {"subject": "read"},
    },
    "systems": [
        {"name": "Help desk", "direction": "to_ai", "fields": ["ticket.subject"]},
        {"name": "CRM", "direction": "both", "fields": ["customer.shipping_address"]},
    ],
    "outside_services": [
        {
            "name": "Hosted model API",
            "kind": "model_api",
            "region": "eu-west",
            "keeps": "30d",
            "sees": ["customer.shipping_address", "ticket.subject"],
        }
    ],
}


@pytest.fixture
def owner(db):
    return UserFactory(username="owner")


def _load(**changes):
    return workflows_load(document={"workflows": [{**WORKFLOW, **changes}]}, actor=Actor.system("test"))


def _problems(**changes) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as refused:
        _load(**changes)
    assert not Workflow.objects.exists()
    return refused.value.problems


def _service(**changes):
    return [{**WORKFLOW["outside_services"][0], **changes}]


def test_systems_and_outside_services_are_stored_as_declared(owner):
    _load()
    workflow = Workflow.objects.get()
    assert workflow.systems == [
        {"name": "Help desk", "direction": "to_ai", "fields": ["ticket.subject"]},
        {"name": "CRM", "direction": "both", "fields": ["customer.shipping_address"]},
    ]
    assert workflow.outside_services == [
        {
            "name": "Hosted model API",
            "kind": "model_api",
            "region": "eu-west",
            "keeps": "30d",
            "sees": ["customer.shipping_address", "ticket.subject"],
        }
    ]


def test_names_are_trimmed_fields_kept_once_and_keeps_written_in_its_largest_unit(owner):
    _load(
        systems=[{"name": "  CRM ", "direction": "from_ai", "fields": ["customer.priority", "customer.priority"]}],
        outside_services=_service(name=" Tracing ", kind="observability", region=" us-east ", keeps="720h"),
    )
    workflow = Workflow.objects.get()
    assert workflow.systems == [{"name": "CRM", "direction": "from_ai", "fields": ["customer.priority"]}]
    assert workflow.outside_services == [
        {
            "name": "Tracing",
            "kind": "observability",
            "region": "us-east",
            "keeps": "30d",
            "sees": ["customer.shipping_address", "ticket.subject"],
        }
    ]


def test_a_service_that_keeps_nothing_and_a_workflow_without_a_map(owner):
    _load(outside_services=_service(keeps="0d"))
    assert Workflow.objects.get().outside_services[0]["keeps"] == "0s"
    workflows_load(
        document={"workflows": [{k: v for k, v in WORKFLOW.items() if k not in ("systems", "outside_services")}]},
        actor=Actor.system("test"),
    )
    workflow = Workflow.objects.get()
    assert (workflow.systems, workflow.outside_services) == ([], [])


def test_the_release_targets_default_and_can_be_declared(owner):
    _load()
    workflow = Workflow.objects.get()
    assert (workflow.rollback_target, workflow.trace_target, workflow.canary_days) == (
        timedelta(minutes=10),
        timedelta(minutes=5),
        3,
    )
    _load(rollback_target="15m", trace_target="2m", canary_days=7)
    workflow = Workflow.objects.get()
    assert (workflow.rollback_target, workflow.trace_target, workflow.canary_days) == (
        timedelta(minutes=15),
        timedelta(minutes=2),
        7,
    )


@pytest.mark.parametrize(
    ("changes", "where", "message"),
    [
        (
            {"systems": [{"name": "CRM", "direction": "sideways", "fields": []}]},
            "systems.CRM.direction",
            "'sideways' is not one of to_ai, from_ai, both",
        ),
        (
            {"systems": [{"name": "CRM", "fields": []}]},
            "systems.CRM.direction",
            "is required: to_ai, from_ai or both",
        ),
        (
            {"systems": [{"name": "CRM", "direction": "both", "fields": ["customer.shoe_size"]}]},
            "systems.CRM.fields.customer.shoe_size",
            "'shoe_size' is not a field of customer in the catalogue",
        ),
        (
            {"systems": [{"name": "CRM", "direction": "both", "fields": ["invoice.total"]}]},
            "systems.CRM.fields.invoice.total",
            "unknown record type 'invoice'; known: customer, order, ticket",
        ),
        (
            {"systems": [{"name": "CRM", "direction": "both", "fields": "customer.priority"}]},
            "systems.CRM.fields",
            "must be a list of fields written record_type.field",
        ),
        (
            {"systems": [{"name": "CRM", "direction": "both", "owner": "it"}]},
            "systems[0]",
            "must be {name, direction, fields}",
        ),
        ({"systems": [{"direction": "both"}]}, "systems[0].name", "is required"),
        (
            {"systems": [{"name": "CRM", "direction": "both"}, {"name": "CRM", "direction": "to_ai"}]},
            "systems.CRM",
            "is declared twice",
        ),
        ({"systems": "CRM"}, "systems", "must be a list of {name, direction, fields}"),
        (
            {"outside_services": _service(kind="crystal_ball")},
            "outside_services.Hosted model API.kind",
            "'crystal_ball' is not one of model_api, transcription, vector_db, observability, browser_plugin, other",
        ),
        (
            {"outside_services": _service(sees=["customer.shoe_size"])},
            "outside_services.Hosted model API.sees.customer.shoe_size",
            "'shoe_size' is not a field of customer in the catalogue",
        ),
        (
            {"outside_services": _service(sees=["invoice.total"])},
            "outside_services.Hosted model API.sees.invoice.total",
            "unknown record type 'invoice'",
        ),
        (
            {"outside_services": _service(keeps=None)},
            "outside_services.Hosted model API.keeps",
            "is required: how long the service keeps what it sees, such as 30d (0s if nothing)",
        ),
        (
            {"outside_services": [{k: v for k, v in _service()[0].items() if k != "keeps"}]},
            "outside_services.Hosted model API.keeps",
            "is required",
        ),
        (
            {"outside_services": _service(keeps="a month")},
            "outside_services.Hosted model API.keeps",
            "'a month' is not a window such as 30s, 15m, 12h or 7d; 0s if it keeps nothing",
        ),
        (
            {"outside_services": _service(keeps=30)},
            "outside_services.Hosted model API.keeps",
            "'30' is not a window",
        ),
        (
            {"outside_services": _service(region=["eu-west"])},
            "outside_services.Hosted model API.region",
            "must be text, such as eu-west",
        ),
        (
            {"outside_services": _service(stores="everything")},
            "outside_services[0]",
            "must be {name, kind, region, keeps, sees}",
        ),
        (
            {"outside_services": _service() + _service()},
            "outside_services.Hosted model API",
            "is declared twice",
        ),
    ],
)
def test_refusals_name_the_workflow_and_the_key(owner, changes, where, message):
    problems = _problems(**changes)
    assert any(
        place == f"workflow 'address-updates': {where}" and said.startswith(message) for place, said in problems
    ), problems


def test_a_service_that_sees_a_field_the_workflow_may_not_read_names_both(owner):
    problems = _problems(outside_services=_service(sees=["customer.shipping_address", "customer.billing_status"]))
    assert problems == [
        (
            "workflow 'address-updates': outside_services.Hosted model API.sees.customer.billing_status",
            "the outside service 'Hosted model API' would see customer.billing_status, "
            "which this workflow may not read",
        )
    ]


def test_the_command_refuses_an_unknown_kind_and_loads_nothing(owner, tmp_path):
    path = tmp_path / "workflows.yaml"
    path.write_text(yaml.safe_dump({"workflows": [{**WORKFLOW, "outside_services": _service(kind="crm")}]}))
    with pytest.raises(CommandError, match=r"outside_services\.Hosted model API\.kind: 'crm' is not one of"):
        call_command("load_workflows", str(path))
    assert not Workflow.objects.exists()


def test_a_change_of_the_map_is_on_the_trail_with_before_and_after(owner):
    _load()
    _load(
        systems=[{"name": "Help desk", "direction": "both", "fields": ["ticket.subject"]}],
        outside_services=_service(keeps="7d"),
    )
    event = AuditEvent.objects.get(action="workflow.changed")
    assert event.workflow_slug == "address-updates"
    assert event.old_value is not None and event.new_value is not None
    assert set(event.old_value) == {"systems", "outside_services"}
    assert event.old_value["systems"] == WORKFLOW["systems"]
    assert event.new_value["systems"] == [{"name": "Help desk", "direction": "both", "fields": ["ticket.subject"]}]
    assert event.old_value["outside_services"][0]["keeps"] == "30d"
    assert event.new_value["outside_services"][0]["keeps"] == "7d"
    _load(
        systems=[{"name": "Help desk", "direction": "both", "fields": ["ticket.subject"]}],
        outside_services=_service(keeps="168h"),
    )
    assert AuditEvent.objects.filter(action="workflow.changed").count() == 1
