"""A workflow asks only what the stores of its record types offer: a policy needs a mapped field, an
action a store that can carry it out as configured. `load_workflows` refuses the rest, naming the
field or action and the store."""

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals.models import Workflow
from tests.helpers.crm import STORES_FILE
from tests.helpers.factories import UserFactory

ORDERS_FILE = """
stores:
  order:
    connector: sql
    database: ${CRM_DATABASE_URL}
    table: crm_orders
    key: order_ref
    version: row_version
    fields: {customer: contact_ref, status: state}
"""


@pytest.fixture(autouse=True)
def owner(db, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CRM_DATABASE_URL", "postgres://crm@127.0.0.1:5432/crm")
    return UserFactory(username="owner")


def _bind(tmp_path: Path, text: str) -> None:
    path = tmp_path / "stores.yaml"
    path.write_text(text, encoding="utf-8")
    call_command("load_stores", str(path))


def _workflow(tmp_path: Path, *, actions: list[str], fields: dict[str, dict[str, str]]) -> None:
    workflow = {
        "slug": "crm-updates",
        "name": "CRM updates",
        "owner": "owner",
        "lane": "write",
        "approvers": "support-leads",
        "actions": actions,
        "fields": fields,
    }
    path = tmp_path / "workflows.yaml"
    path.write_text(yaml.safe_dump({"workflows": [workflow]}), encoding="utf-8")
    call_command("load_workflows", str(path))


def _refused(tmp_path: Path, **workflow) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError) as refused:
        _workflow(tmp_path, **workflow)
    assert not Workflow.objects.exists()
    return str(refused.value)


def test_a_workflow_on_fields_its_store_maps_loads(tmp_path):
    _bind(tmp_path, STORES_FILE)
    _workflow(tmp_path, actions=["update", "archive", "delete"], fields={"customer": {"shipping_address": "suggest"}})
    assert Workflow.objects.get().actions == ["update", "archive", "delete"]


def test_a_policy_on_a_field_the_store_does_not_map_is_refused_naming_the_field_and_the_store(tmp_path):
    _bind(tmp_path, STORES_FILE)
    message = _refused(tmp_path, actions=["update"], fields={"customer": {"phone": "suggest", "email": "read"}})
    assert (
        "workflow 'crm-updates': fields.customer.phone: the customer store, sql (crm_contacts), does not map phone "
        "(it maps email, full_name, priority, shipping_address, tags)"
    ) in message
    assert "fields.customer.email" not in message


@pytest.mark.parametrize(
    ("drop", "action", "reason"),
    [
        ("archived: archived_at", "archive", "cannot archive: its binding names no archive column (archived)"),
        ("deleted: deleted_at", "delete", "cannot delete: its binding names no delete column (deleted)"),
    ],
)
def test_an_action_whose_column_is_not_configured_is_refused(tmp_path, drop, action, reason):
    _bind(tmp_path, STORES_FILE.replace(f"    {drop}\n", ""))
    message = _refused(tmp_path, actions=["update", action], fields={"customer": {"priority": "write"}})
    assert f"workflow 'crm-updates': actions.{action}: the customer store, sql (crm_contacts), {reason}" in message


def test_a_merge_on_a_store_that_cannot_move_related_rows_is_refused_with_that_reason(tmp_path):
    _bind(tmp_path, STORES_FILE)
    message = _refused(tmp_path, actions=["merge"], fields={"customer": {"full_name": "read"}})
    assert (
        "actions.merge: the customer store, sql (crm_contacts), cannot move related rows, "
        "so merge stays a built-in-store action"
    ) in message


def test_a_merge_that_would_move_rows_of_a_store_that_cannot_is_refused(tmp_path):
    _bind(tmp_path, ORDERS_FILE)
    message = _refused(tmp_path, actions=["merge"], fields={"customer": {"full_name": "read"}})
    assert (
        "actions.merge: merging a customer moves the order records that refer to it, and the order store, "
        "sql (crm_orders), cannot move related rows"
    ) in message


def test_merge_on_the_built_in_store_still_loads(tmp_path):
    _workflow(tmp_path, actions=["merge"], fields={"customer": {"full_name": "read"}})
    assert Workflow.objects.get().actions == ["merge"]


def test_a_store_that_cannot_be_built_where_the_file_is_loaded_refuses_the_workflow(tmp_path, monkeypatch):
    _bind(tmp_path, STORES_FILE)
    monkeypatch.delenv("CRM_DATABASE_URL")
    message = _refused(tmp_path, actions=["update"], fields={"customer": {"priority": "write"}})
    assert "fields.customer: the customer store, sql (crm_contacts), cannot be built here" in message
    assert "CRM_DATABASE_URL is not set" in message
