"""SQLite alters a column by rebuilding the table, which silently drops its triggers. The guard must survive."""

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from audit.services import Actor, audit_record
from audit.triggers import remove_append_only_triggers


def _assert_append_only() -> None:
    audit_record(action="workflow.created", actor=Actor.system("test"))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET reason = 'edited'")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent")


@pytest.mark.django_db(transaction=True)
def test_the_trail_index_migration_keeps_the_table_append_only_both_ways():
    executor = MigrationExecutor(connection)
    executor.migrate([("audit", "0002_append_only_triggers")])
    _assert_append_only()
    executor.loader.build_graph()
    executor.migrate([("audit", "0003_trail_indexes")])
    _assert_append_only()


@pytest.mark.django_db(transaction=True)
def test_every_migrate_puts_the_guard_back():
    remove_append_only_triggers(connection)
    call_command("migrate", verbosity=0)
    _assert_append_only()
