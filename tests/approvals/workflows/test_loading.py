from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from guardian.shortcuts import get_perms

from approvals.models import FieldPolicy, RetentionRule, Workflow
from audit.models import AuditEvent
from tests.helpers.factories import UserFactory

DEMO_FILE = Path(__file__).resolve().parents[3] / "approvals" / "demo" / "workflows.yaml"
# The demo file puts workflows at every stage, before any drill or review: loading it forces the stages.
FORCED = ("--force-stage", "--reason", "The demo shows every stage at once", "--user", "owner")

WORKFLOW = {
    "slug": "address-updates",
    "name": "Address updates",
    "owner": "owner",
    "lane": "write",
    "stage": "draft",
    "approvers": "support-leads",
    "overrides": {
        "day": {
            "group": "support-leads",
            "days": ["mon", "tue"],
            "from": "08:00",
            "to": "18:00",
            "timezone": "Europe/London",
        },
        "after_hours": {"group": "ops-managers"},
        "max_minutes": 240,
    },
    "actions": ["update"],
    "fields": {"customer": {"full_name": "read", "shipping_address": "suggest", "priority": "write"}},
    "retention": {"prompt": {"live": "7d"}},
}


@pytest.fixture
def owner(db):
    return UserFactory(username="owner")


def _load(tmp_path, *workflows):
    path = tmp_path / "workflows.yaml"
    path.write_text(yaml.safe_dump({"workflows": list(workflows)}))
    call_command("load_workflows", str(path))


def _with(**changes):
    return {**WORKFLOW, **changes}


def test_loads_workflow_policies_groups_and_retention(owner, tmp_path):
    _load(tmp_path, WORKFLOW)
    workflow = Workflow.objects.get(slug="address-updates")
    assert workflow.approver_group is not None and workflow.approver_group.name == "support-leads"
    assert workflow.override_after_hours_group is not None
    assert workflow.override_after_hours_group.name == "ops-managers"
    assert workflow.override_max_minutes == 240
    assert {(p.field, p.access) for p in workflow.policies.all()} == {
        ("full_name", "read"),
        ("shipping_address", "suggest"),
        ("priority", "write"),
    }
    rule = RetentionRule.objects.get(workflow=workflow)
    assert (rule.kind, rule.bucket, rule.window.days, rule.owner) == ("prompt", "live", 7, owner)
    leads, ops = Group.objects.get(name="support-leads"), Group.objects.get(name="ops-managers")
    assert set(get_perms(leads, workflow)) == {
        "view_workflow",
        "review_workflow",
        "rollback_workflow",
        "override_workflow",
    }
    assert set(get_perms(ops, workflow)) == {"view_workflow", "override_workflow"}


def test_loading_the_same_file_twice_changes_nothing(owner, tmp_path, capsys):
    _load(tmp_path, WORKFLOW)
    events = AuditEvent.objects.count()
    _load(tmp_path, WORKFLOW)
    assert "unchanged: address-updates" in capsys.readouterr().out
    assert AuditEvent.objects.count() == events
    assert FieldPolicy.objects.count() == 3


def test_a_changed_policy_is_audited_with_before_and_after(owner, tmp_path):
    _load(tmp_path, WORKFLOW)
    _load(tmp_path, _with(fields={"customer": {"full_name": "read", "shipping_address": "read"}}))
    event = AuditEvent.objects.get(action="policy.changed", field="shipping_address", new_value="read")
    assert event.old_value == "suggest"
    assert AuditEvent.objects.filter(action="policy.changed", field="priority", new_value__isnull=True).exists()
    assert not FieldPolicy.objects.filter(field="priority").exists()


def test_refuses_write_on_billing_status_naming_the_field(owner, tmp_path):
    bad = _with(fields={"customer": {"billing_status": "write"}})
    with pytest.raises(CommandError, match="fields.customer.billing_status: write is refused on the high-risk field"):
        _load(tmp_path, bad)
    assert not Workflow.objects.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"owner": "nobody"}, "workflow 'address-updates': owner: no user 'nobody'"),
        ({"lane": "fast"}, "lane: 'fast' is not one of assist, write"),
        ({"stage": "beta"}, "stage: 'beta' is not one of"),
        ({"fields": {"invoice": {"total": "read"}}}, "fields.invoice: unknown record type"),
        ({"fields": {"customer": {"shoe_size": "read"}}}, "fields.customer.shoe_size: unknown field of customer"),
        ({"lane": "assist", "actions": []}, "fields.customer.shipping_address: an assist-lane workflow may only read"),
        ({"lane": "assist", "fields": {}}, "actions: an assist-lane workflow only reads and drafts"),
        (
            {"overrides": {"day": {"group": "g", "from": "8am", "to": "18:00"}, "after_hours": {"group": "o"}}},
            "overrides.day.from: must be a time",
        ),
        (
            {
                "overrides": {
                    "day": {"group": "g", "from": "08:00", "to": "18:00", "timezone": "Mars/Olympus"},
                    "after_hours": {"group": "o"},
                }
            },
            "overrides.day.timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            {"overrides": {"day": {"group": "g", "from": "18:00", "to": "08:00"}, "after_hours": {"group": "o"}}},
            "overrides.day.to: must be after the start of the day",
        ),
        (
            {"overrides": {"day": {"group": "g", "from": "08:00", "to": "18:00"}}},
            "overrides.after_hours: is required with a day group: someone must be on duty at night",
        ),
        (
            {"overrides": {"day": {"group": "g", "days": "mon", "from": "08:00", "to": "18:00"}, "after_hours": {}}},
            "overrides.after_hours: must be {group: NAME}",
        ),
        ({"overrides": {"max_minutes": 0}}, "overrides.max_minutes: must be a whole number from 1 to 1440"),
        ({"retention": {"prompt": {"live": "forever"}}}, "retention.prompt.live: 'forever' is not a window"),
        ({"colour": "blue"}, "colour: unknown key"),
        ({"webhooks": "hooks.example.com"}, "webhooks: must be a list of host names"),
        ({"webhooks": ["https://hooks.example.com/x"]}, "webhooks.https://hooks.example.com/x: must be a host name"),
        ({"webhooks": ["hooks.example.com:70000"]}, "webhooks.hooks.example.com:70000: must be a host name"),
        ({"follow_ups": ["address-confirmed"]}, "follow_ups: must map follow-up kinds to template names"),
        ({"follow_ups": {"email_customer": ["welcome"]}}, "follow_ups.email_customer.welcome: unknown template"),
        ({"follow_ups": {"email_customer": "address-confirmed"}}, "follow_ups.email_customer: must be a list"),
        ({"follow_ups": {"sms": ["hello"]}}, "follow_ups.sms: unknown follow-up kind; known: email_customer"),
        (
            {"follow_ups": {"webhook": ["x"]}},
            "follow_ups.webhook: unknown follow-up kind; known: email_customer; webhooks",
        ),
        (
            {"lane": "assist", "actions": [], "fields": {}, "follow_ups": {"email_customer": ["address-confirmed"]}},
            "follow_ups: an assist-lane workflow only reads and drafts; it asks for no follow-up",
        ),
    ],
)
def test_refusals_name_the_workflow_and_key(owner, tmp_path, changes, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(".", r"\.")):
        _load(tmp_path, _with(**changes))
    assert not Workflow.objects.exists()


def test_webhook_hosts_are_kept_lowercase_and_a_change_is_audited(owner, tmp_path):
    _load(tmp_path, _with(webhooks=["Hooks.Example.com", "crm.internal:8443"]))
    assert Workflow.objects.get().webhook_hosts == ["crm.internal:8443", "hooks.example.com"]
    _load(tmp_path, _with(webhooks=["hooks.example.com"]))
    assert Workflow.objects.get().webhook_hosts == ["hooks.example.com"]
    event = AuditEvent.objects.get(action="workflow.changed")
    assert event.old_value == {"webhook_hosts": ["crm.internal:8443", "hooks.example.com"]}
    assert event.new_value == {"webhook_hosts": ["hooks.example.com"]}


def test_the_email_templates_a_workflow_may_send_are_kept_and_loading_again_changes_nothing(owner, tmp_path):
    declared = _with(follow_ups={"email_customer": ["ticket-update", "address-confirmed", "ticket-update"]})
    _load(tmp_path, declared)
    workflow = Workflow.objects.get()
    assert workflow.follow_up_templates == {"email_customer": ["address-confirmed", "ticket-update"]}
    created = AuditEvent.objects.get(action="workflow.created").new_value
    assert created is not None
    assert created["follow_up_templates"] == {"email_customer": ["address-confirmed", "ticket-update"]}
    _load(tmp_path, declared)
    assert not AuditEvent.objects.filter(action="workflow.changed").exists()
    _load(tmp_path, _with(follow_ups={"email_customer": ["address-confirmed"]}))
    event = AuditEvent.objects.get(action="workflow.changed")
    assert event.old_value == {"follow_up_templates": {"email_customer": ["address-confirmed", "ticket-update"]}}
    assert event.new_value == {"follow_up_templates": {"email_customer": ["address-confirmed"]}}
    _load(tmp_path, WORKFLOW)
    assert Workflow.objects.get().follow_up_templates == {}


def test_the_demo_file_declares_the_follow_ups_its_demo_proposals_ask_for(db):
    UserFactory(username="owner")
    UserFactory(username="ops")
    call_command("load_workflows", str(DEMO_FILE), *FORCED)
    address = Workflow.objects.get(slug="address-updates")
    assert address.follow_up_templates == {"email_customer": ["address-confirmed"]}
    assert address.webhook_hosts == ["hooks.example.com"]
    assert {w.slug for w in Workflow.objects.exclude(follow_up_templates={})} == {"address-updates"}


def test_one_bad_workflow_loads_nothing(owner, tmp_path):
    other = _with(slug="second", lane="nope")
    with pytest.raises(CommandError, match="workflow 'second': lane"):
        _load(tmp_path, WORKFLOW, other)
    assert not Workflow.objects.exists()


def test_unreadable_yaml_and_missing_file(db, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("workflows: [unclosed")
    with pytest.raises(CommandError, match="not readable YAML"):
        call_command("load_workflows", str(path))
    with pytest.raises(CommandError, match="no such file"):
        call_command("load_workflows", str(tmp_path / "absent.yaml"))
    assert not Workflow.objects.exists()


def test_the_demo_file_loads(db):
    for name in ("owner", "ops"):
        UserFactory(username=name)
    call_command("load_workflows", str(DEMO_FILE), *FORCED)
    stages = set(Workflow.objects.values_list("stage", flat=True))
    lanes = set(Workflow.objects.values_list("lane", flat=True))
    assert stages == {"draft", "shadow", "canary", "live", "paused"}
    assert lanes == {"assist", "write"}


def test_the_workflows_page_names_the_hosts_a_workflow_may_call(owner, tmp_path, client):
    _load(tmp_path, _with(webhooks=["hooks.example.com", "crm.internal:8443"]), _with(slug="quiet"))
    client.force_login(owner)
    html = client.get(reverse("workflow-list")).content.decode()
    assert html.count("Webhooks to:") == 1
    assert "Webhooks to: crm.internal:8443, hooks.example.com" in html


def test_two_person_fields_leave_the_workflow_name_alone(owner, tmp_path):
    _load(tmp_path, _with(name="Refund notes", two_person={"fields": ["shipping_address"]}))
    assert Workflow.objects.get(slug="address-updates").name == "Refund notes"


def test_the_second_owner_of_the_retention_rules_is_kept_and_must_be_someone_else(owner, tmp_path):
    UserFactory(username="security")
    _load(tmp_path, _with(retention_co_owner="security"))
    co_owner = Workflow.objects.get().retention_co_owner
    assert co_owner is not None and co_owner.get_username() == "security"
    _load(tmp_path, _with())
    assert Workflow.objects.get().retention_co_owner is None
    event = AuditEvent.objects.filter(action="workflow.changed").last()
    assert event is not None and event.old_value == {"retention_co_owner": "security"}
    for named, message in (("nobody", "no user 'nobody'"), ("owner", "must be someone other than the retention owner")):
        with pytest.raises(CommandError, match=message):
            _load(tmp_path, _with(retention_co_owner=named))
    assert Workflow.objects.get().retention_co_owner is None
