"""The app's own database role cannot rewrite the trail: only the owner, who runs migrations, can."""

from collections.abc import Iterator

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.models import AuditEvent
from audit.services import Actor, audit_record
from tests.helpers.factories import UserFactory

ROLE = "countersign_h1_test_app"
pytestmark = pytest.mark.postgres


def _drop_role() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE])
        if cursor.fetchone():
            cursor.execute(f"DROP OWNED BY {ROLE}")
            cursor.execute(f"DROP ROLE {ROLE}")


@pytest.fixture
def app_role(transactional_db, monkeypatch) -> Iterator[psycopg.Connection]:  # type: ignore[no-untyped-def]
    """The app's role granted on the test database, and a connection made as it."""
    _drop_role()
    monkeypatch.setenv("APP_DATABASE_PASSWORD", "app-role-password")
    call_command("grant_app_role", ROLE)
    settings = connection.settings_dict
    as_app = psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        dbname=settings["NAME"],
        user=ROLE,
        password="app-role-password",  # noqa: S106
        autocommit=True,
    )
    try:
        yield as_app
    finally:
        as_app.close()
        _drop_role()


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL",
        "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_no_update_delete",
        "UPDATE audit_auditevent SET reason = 'rewritten'",
        "DELETE FROM audit_auditevent",
        "TRUNCATE audit_auditevent",
        "DROP TABLE audit_auditevent",
        "DROP TRIGGER audit_no_update_delete ON audit_auditevent",
        "UPDATE audit_tombstone SET size = 0",
        "TRUNCATE audit_tombstone",
        "DROP TABLE audit_tombstone",
    ],
)
def test_the_app_role_is_refused_each_way_of_rewriting_the_trail(app_role, statement):
    event = audit_record(action="workflow.created", actor=Actor.system("test"))
    # Refused for want of the privilege (or of owning the table), before any trigger could run.
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied|must be owner"):
        app_role.execute(statement)
    event.refresh_from_db()
    assert event.reason == ""
    assert AuditEvent.objects.count() == 1


def test_the_app_role_appends_and_reads_the_trail_and_writes_everything_else(app_role):
    first = audit_record(action="workflow.created", actor=Actor.system("test"))
    user = UserFactory(username="dana")
    # An append as the app does it on PostgreSQL: take the chain's lock and head, then insert.
    (head,) = app_role.execute("SELECT audit_chain_head(7318220461)").fetchone()
    assert head == first.hash
    assert app_role.execute("SELECT count(*) FROM audit_auditevent").fetchone() == (1,)
    app_role.execute("UPDATE auth_user SET first_name = 'Dee' WHERE id = %s", [user.pk])
    app_role.execute("INSERT INTO auth_group (name) VALUES ('reviewers') RETURNING id")  # a sequence it may draw from
    app_role.execute("DELETE FROM auth_group WHERE name = 'reviewers'")
    user.refresh_from_db()
    assert user.first_name == "Dee"


def test_granting_again_changes_nothing_and_an_unknown_role_needs_a_password(app_role, monkeypatch, capsys):
    call_command("grant_app_role", ROLE)
    assert f"Updated role {ROLE}" in capsys.readouterr().out
    monkeypatch.delenv("APP_DATABASE_PASSWORD")
    with pytest.raises(CommandError, match="password: role 'countersign_h1_other' does not exist yet"):
        call_command("grant_app_role", "countersign_h1_other")
    with pytest.raises(CommandError, match="role: 'app; drop' is not a plain role name"):
        call_command("grant_app_role", "app; drop")
