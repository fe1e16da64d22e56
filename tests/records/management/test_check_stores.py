"""`manage.py check_stores`: each store reached, one record read, every mapped field present with a
compatible type; what it found is printed and kept on the binding; any problem exits non-zero."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from records.models import StoreBinding
from tests.helpers.crm import STORES_FILE

pytestmark = pytest.mark.postgres


def _bind(crm, tmp_path, text: str = STORES_FILE) -> None:
    call_command("load_stores", str(crm.stores_file(tmp_path, text)))


def _check(capsys) -> tuple[str, str]:
    """The printed lines and the refusal ("" when it exited zero)."""
    try:
        call_command("check_stores")
    except CommandError as error:
        return capsys.readouterr().out, str(error)
    return capsys.readouterr().out, ""


def test_a_good_binding_is_reported_with_what_was_found_and_recorded(db, crm, tmp_path, capsys):
    _bind(crm, tmp_path)
    out, refusal = _check(capsys)
    assert refusal == ""
    assert "customer: sql: ok" in out
    assert "found: table crm_contacts: 11 columns, 5 mapped" in out
    assert "found: read CUS-9001 at version 1" in out
    assert "order: builtin: ok" in out
    binding = StoreBinding.objects.get()
    assert binding.reachable is True and binding.checked_at is not None
    assert "read CUS-9001 at version 1" in binding.check_message


@pytest.mark.parametrize(
    ("replace", "by", "problem"),
    [
        ("tags: labels", "tags: tag_list", "fields.tags: no column tag_list in crm_contacts"),
        (
            "tags: labels",
            "tags: is_verified",
            "fields.tags: is_verified is bool; the store needs a text[] or json column",
        ),
        (
            "priority: prio",
            "priority: lifetime_value",
            "fields.priority: lifetime_value is float8; the store needs a text column",
        ),
        (
            "version: row_version",
            "version: lifetime_value",
            "version: lifetime_value is float8; the store needs an integer column",
        ),
        (
            "archived: archived_at",
            "archived: is_verified",
            "archived: is_verified is bool; the store needs a timestamp column",
        ),
        ("table: crm_contacts", "table: crm_people", 'table: relation "crm_people" does not exist'),
    ],
)
def test_each_problem_is_named_and_exits_non_zero(db, crm, tmp_path, capsys, replace, by, problem):
    _bind(crm, tmp_path, STORES_FILE.replace(replace, by))
    out, refusal = _check(capsys)
    assert "customer: sql: reachable, with problems" in out
    assert f"problem: {problem}" in out
    assert refusal == "problems with the store of customer"
    binding = StoreBinding.objects.get()
    assert binding.reachable is True and problem in binding.check_message


def test_an_unreachable_database_is_reported_unreachable(db, crm, tmp_path, capsys, monkeypatch):
    _bind(crm, tmp_path)
    monkeypatch.setenv("CRM_DATABASE_URL", "postgres://postgres@127.0.0.1:1/crm")
    StoreBinding.objects.update(digest="read-again")  # as a fresh process would build it
    out, refusal = _check(capsys)
    assert "customer: sql: UNREACHABLE" in out
    assert "problem: database: " in out
    assert refusal == "problems with the store of customer"
    assert StoreBinding.objects.get().reachable is False
