"""The workflows page: each workflow's record types, the store each is kept in, and whether that
store was reachable at the last `check_stores`."""

import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from tests.helpers.crm import STORES_FILE
from tests.helpers.factories import FieldPolicyFactory, UserFactory, WorkflowFactory


@pytest.fixture
def owner(db):  # type: ignore[no-untyped-def]
    owner = UserFactory(username="owner", password="owner")
    workflow = WorkflowFactory(slug="address-updates", owner=owner)
    FieldPolicyFactory(workflow=workflow, record_type="customer", field="shipping_address")
    FieldPolicyFactory(workflow=workflow, record_type="order", field="status")
    return owner


def _stores_cell(client, owner) -> str:
    client.force_login(owner)
    html = client.get(reverse("workflow-list")).content.decode()
    return " ".join(re.sub(r"<[^>]+>", " ", "".join(re.findall(r'<div class="record-store">.*?</div>', html))).split())


def test_record_types_on_the_built_in_store_say_so(client, owner):
    assert _stores_cell(client, owner) == "customer: built-in store order: built-in store"


def test_a_bound_store_not_yet_checked_says_so(client, owner, tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_DATABASE_URL", "postgres://postgres@127.0.0.1:1/crm")
    call_command("load_stores", str(_stores_file(tmp_path)))
    assert "customer: sql (crm_contacts) · not checked yet" in _stores_cell(client, owner)


def test_an_unreachable_store_is_shown_unreachable_with_the_time_of_the_check(client, owner, tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_DATABASE_URL", "postgres://postgres@127.0.0.1:1/crm")
    call_command("load_stores", str(_stores_file(tmp_path)))
    with pytest.raises(CommandError):
        call_command("check_stores")
    cell = _stores_cell(client, owner)
    assert re.search(
        r"customer: sql \(crm_contacts\) · unreachable at the last check, \d{4}-\d\d-\d\d \d\d:\d\d UTC", cell
    )
    assert "order: built-in store" in cell


@pytest.mark.postgres
def test_a_reachable_store_is_shown_reachable(client, owner, crm, tmp_path):
    call_command("load_stores", str(crm.stores_file(tmp_path)))
    call_command("check_stores")
    assert re.search(r"customer: sql \(crm_contacts\) · reachable at the last check, ", _stores_cell(client, owner))


def _stores_file(folder):  # type: ignore[no-untyped-def]
    path = folder / "stores.yaml"
    path.write_text(STORES_FILE, encoding="utf-8")
    return path
