"""`manage.py load_stores FILE.yaml`: binding record types to systems of record from a file kept in git."""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from audit.models import AuditEvent
from records.models import StoreBinding
from tests.helpers.crm import STORES_FILE
from tests.helpers.factories import FieldPolicyFactory, UserFactory, WorkflowFactory
from tests.helpers.seeing import make_auditor

CRM_URL = "postgres://crm@127.0.0.1:5432/crm"


@pytest.fixture(autouse=True)
def crm_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", CRM_URL)


def _load(tmp_path: Path, text: str, *args: str, capsys: pytest.CaptureFixture[str] | None = None) -> str:
    path = tmp_path / "stores.yaml"
    path.write_text(text, encoding="utf-8")
    call_command("load_stores", str(path), *args)
    return capsys.readouterr().out if capsys else ""


def _refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(CommandError) as refused:
        _load(tmp_path, text)
    assert StoreBinding.objects.count() == 0, "nothing is written when the file is refused"
    return str(refused.value)


def _customer(**changes: str | None) -> str:
    """The tests' stores file with some of the customer binding's lines replaced (None drops one)."""
    lines = []
    for line in STORES_FILE.splitlines():
        key = line.strip().split(":", 1)[0]
        if not (line.startswith("    ") and key in changes):
            lines.append(line)
    lines += [f"    {key}: {value}" for key, value in changes.items() if value is not None]
    return "\n".join(lines) + "\n"


def test_binds_the_record_type_keeping_placeholders_and_records_it_on_the_trail(db, tmp_path, capsys):
    out = _load(tmp_path, STORES_FILE, capsys=capsys)
    assert "bound: customer" in out
    binding = StoreBinding.objects.get()
    assert (binding.record_type, binding.connector) == ("customer", "sql")
    assert binding.settings["database"] == "${CRM_DATABASE_URL}"
    assert CRM_URL not in str(binding.settings)
    assert binding.fields["shipping_address"] == "postal_address"
    event = AuditEvent.objects.get(action="store.configured")
    old, new = event.old_value or {}, event.new_value or {}
    assert (event.record_type, old, new["connector"]) == ("customer", {"connector": "builtin"}, "sql")
    assert new["settings"]["database"] == "${CRM_DATABASE_URL}"


def test_loading_the_same_file_twice_changes_nothing_and_records_nothing(db, tmp_path, capsys):
    _load(tmp_path, STORES_FILE)
    first = StoreBinding.objects.get()
    out = _load(tmp_path, STORES_FILE, capsys=capsys)
    assert "unchanged: customer" in out
    assert StoreBinding.objects.get().configured_at == first.configured_at
    assert AuditEvent.objects.filter(action="store.configured").count() == 1


def test_a_changed_binding_is_recorded_with_what_it_was(db, tmp_path, capsys):
    _load(tmp_path, STORES_FILE)
    out = _load(tmp_path, _customer(table="crm.contacts"), capsys=capsys)
    assert "changed: customer" in out
    assert StoreBinding.objects.get().settings["table"] == "crm.contacts"
    event = AuditEvent.objects.filter(action="store.configured").order_by("-id").first()
    assert event is not None
    old, new = event.old_value or {}, event.new_value or {}
    assert (old["settings"]["table"], new["settings"]["table"]) == (
        "crm_contacts",
        "crm.contacts",
    )


def test_a_record_type_left_out_of_the_file_goes_back_to_the_built_in_store(db, tmp_path, capsys):
    _load(tmp_path, STORES_FILE)
    out = _load(tmp_path, "stores: {}\n", capsys=capsys)
    assert "back on the built-in store: customer" in out
    assert not StoreBinding.objects.exists()
    event = AuditEvent.objects.filter(action="store.configured").order_by("-id").first()
    assert event is not None and event.new_value == {"connector": "builtin"}


def test_naming_the_built_in_store_is_the_same_as_leaving_the_record_type_out(db, tmp_path):
    _load(tmp_path, STORES_FILE)
    _load(tmp_path, "stores:\n  customer: {connector: builtin}\n")
    assert not StoreBinding.objects.exists()


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (
            "stores:\n  invoice: {connector: sql}\n",
            "stores.invoice",
            "unknown record type; known: customer, order, ticket",
        ),
        ("stores:\n  customer: {connector: ftp}\n", "stores.customer.connector", "unknown connector 'ftp'"),
        ("stores:\n  customer: {}\n", "stores.customer.connector", "is required"),
        ("stores:\n  customer: sql\n", "stores.customer", "must be a mapping"),
        ("workflows: []\n", "stores", "under the key 'stores'"),
        ("stores: {}\nextra: 1\n", "extra", "unknown top-level key"),
        ("stores:\n  customer: {connector: builtin, table: t}\n", "stores.customer.table", "takes no settings"),
        (_customer(table=None), "stores.customer.table", "is required"),
        (_customer(key=None), "stores.customer.key", "is required"),
        (_customer(version=None), "stores.customer.version", "is required"),
        (_customer(archived="''"), "stores.customer.archived", "must name a timestamp column"),
        (_customer(statement_timeout="forever"), "stores.customer.statement_timeout", "a number of seconds"),
        (_customer(colour="blue"), "stores.customer.colour", "unknown key for the sql connector; known: database"),
        (_customer(fields="{nickname: nick}"), "stores.customer.fields.nickname", "not a field of customer"),
        (
            _customer(fields="{full_name: name, email: name}"),
            "stores.customer.fields.full_name",
            "mapped from more than one field",
        ),
        (
            _customer(fields="{full_name: row_version}"),
            "stores.customer.fields.full_name",
            "the table's key, version or archive column",
        ),
        (_customer(fields="[name]"), "stores.customer.fields", "must map catalogue field names"),
        (
            _customer(database="postgres://crm:hunter2@db.internal/crm"),
            "stores.customer.database",
            "a password is written in the URL",
        ),
        (
            _customer(database="${CRM_DATABASE_URL_UNSET}"),
            "stores.customer.database",
            "CRM_DATABASE_URL_UNSET is not set",
        ),
        (
            _customer(side_effects="{phone: texts the customer}"),
            "stores.customer.side_effects.phone",
            "not a field this binding maps",
        ),
    ],
)
def test_a_wrong_file_is_refused_naming_the_key_and_nothing_is_written(db, tmp_path, text, key, reason):
    message = _refusal(tmp_path, text)
    assert f"{key}: " in message and reason in message, message


def test_a_password_from_the_environment_inside_a_url_is_accepted(db, tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_PASSWORD", "hunter2")
    _load(tmp_path, _customer(database="postgres://crm:${CRM_PASSWORD}@db.internal/crm"))
    assert StoreBinding.objects.get().settings["database"] == "postgres://crm:${CRM_PASSWORD}@db.internal/crm"


def test_a_secret_written_in_the_file_is_refused(db, tmp_path):
    message = _refusal(tmp_path, _customer(token="bcrm_pat_123"))
    assert "stores.customer.token: a secret is never written in the file" in message


def test_every_problem_is_listed_at_once(db, tmp_path):
    message = _refusal(tmp_path, _customer(table=None, version=None))
    assert "stores.customer.table: is required" in message
    assert "stores.customer.version: is required" in message


def test_a_binding_that_would_leave_a_workflow_policy_on_an_unmapped_field_is_refused(db, tmp_path):
    workflow = WorkflowFactory(slug="phone-fixes")
    FieldPolicyFactory(workflow=workflow, record_type="customer", field="phone", access="suggest")
    message = _refusal(tmp_path, STORES_FILE)
    assert "stores.customer: workflow 'phone-fixes' has a policy on customer.phone" in message
    assert "does not map phone" in message


def test_a_binding_that_would_leave_a_workflow_archiving_without_an_archive_column_is_refused(db, tmp_path):
    workflow = WorkflowFactory(slug="tidy-up", actions=["update", "archive"])
    FieldPolicyFactory(workflow=workflow, record_type="customer", field="priority", access="write")
    message = _refusal(tmp_path, _customer(archived=None))
    assert "workflow 'tidy-up' has the action archive" in message
    assert "cannot archive: its binding names no archive column (archived)" in message


def test_an_unreadable_file_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("load_stores", str(tmp_path / "missing.yaml"))
    path = tmp_path / "bad.yaml"
    path.write_text("stores: [", encoding="utf-8")
    with pytest.raises(CommandError, match="not readable YAML"):
        call_command("load_stores", str(path))


def test_an_auditor_reads_the_binding_change_on_the_trail(db, tmp_path, client):
    _load(tmp_path, STORES_FILE)
    client.force_login(make_auditor(UserFactory(username="auditor")))
    html = client.get(reverse("trail"), {"action": "store.configured"}).content.decode()
    assert "store.configured" in html
    assert "${CRM_DATABASE_URL}" in html and CRM_URL not in html
