"""The database triggers that make the audit table append-only, per database vendor."""

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "audit_auditevent"

_POSTGRES_INSTALL = [
    """
    CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit events are append-only: % refused on %', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$ LANGUAGE plpgsql
    """,
    f"DROP TRIGGER IF EXISTS audit_no_update_delete ON {TABLE}",
    f"""CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
        FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()""",
    f"DROP TRIGGER IF EXISTS audit_no_truncate ON {TABLE}",
    f"""CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()""",
]
_POSTGRES_REMOVE = [
    f"DROP TRIGGER IF EXISTS audit_no_update_delete ON {TABLE}",
    f"DROP TRIGGER IF EXISTS audit_no_truncate ON {TABLE}",
]

# SQLite has no TRUNCATE; an unqualified DELETE is refused by the delete trigger.
_SQLITE_INSTALL = [
    f"""CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END""",
]
_SQLITE_REMOVE = ["DROP TRIGGER IF EXISTS audit_no_update", "DROP TRIGGER IF EXISTS audit_no_delete"]

_STATEMENTS = {
    "postgresql": (_POSTGRES_INSTALL, _POSTGRES_REMOVE),
    "sqlite": (_SQLITE_INSTALL, _SQLITE_REMOVE),
}


# Locks the chain for the rest of the transaction, then reads its head. A VOLATILE function takes a
# fresh snapshot for each statement in it, so the head it reads is the one the previous holder of the
# lock committed, even when it is called from inside a larger statement.
_POSTGRES_CHAIN_HEAD = """
    CREATE OR REPLACE FUNCTION audit_chain_head(lock_key bigint) RETURNS varchar AS $$
    DECLARE
        head varchar;
    BEGIN
        PERFORM pg_advisory_xact_lock(lock_key);
        SELECT hash INTO head FROM audit_auditevent ORDER BY id DESC LIMIT 1;
        RETURN coalesce(head, repeat('0', 64));
    END;
    $$ LANGUAGE plpgsql VOLATILE
"""


def install_chain_head(connection: BaseDatabaseWrapper) -> None:
    """The PostgreSQL function appenders call to take the chain's lock and read its head."""
    if connection.vendor == "postgresql":
        _run(connection, [_POSTGRES_CHAIN_HEAD])


def _run(connection: BaseDatabaseWrapper, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def install_append_only_triggers(connection: BaseDatabaseWrapper) -> None:
    if connection.vendor not in _STATEMENTS:
        raise ImproperlyConfigured(
            f"Countersign keeps its audit trail on PostgreSQL or SQLite; {connection.vendor} has no append-only guard"
        )
    _run(connection, _STATEMENTS[connection.vendor][0])


def remove_append_only_triggers(connection: BaseDatabaseWrapper) -> None:
    """Only for maintenance and for tests that must bypass the guard (and say so)."""
    _run(connection, _STATEMENTS[connection.vendor][1])
