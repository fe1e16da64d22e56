"""The database triggers that make the audit table append-only, per database vendor."""

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import BaseDatabaseWrapper

# The trail, and the tombstones its purge events vouch for.
TABLES = ("audit_auditevent", "audit_tombstone")

_POSTGRES_FUNCTION = """
    CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit events are append-only: % refused on %', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$ LANGUAGE plpgsql
"""


def _postgres(table: str) -> tuple[list[str], list[str]]:
    remove = [
        f"DROP TRIGGER IF EXISTS audit_no_update_delete ON {table}",
        f"DROP TRIGGER IF EXISTS audit_no_truncate ON {table}",
    ]
    install = [
        _POSTGRES_FUNCTION,
        *remove,
        f"""CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()""",
        f"""CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()""",
    ]
    return install, remove


def _sqlite(table: str) -> tuple[list[str], list[str]]:
    # SQLite has no TRUNCATE; an unqualified DELETE is refused by the delete trigger. Trigger names
    # are per database there, so each but the trail's own carries its table's name.
    suffix = "" if table == "audit_auditevent" else f"_{table}"
    install = [
        f"""CREATE TRIGGER IF NOT EXISTS audit_no_update{suffix} BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS audit_no_delete{suffix} BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END""",
    ]
    return install, [
        f"DROP TRIGGER IF EXISTS audit_no_update{suffix}",
        f"DROP TRIGGER IF EXISTS audit_no_delete{suffix}",
    ]


_STATEMENTS = {"postgresql": _postgres, "sqlite": _sqlite}


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


def _guarded_tables(connection: BaseDatabaseWrapper) -> list[str]:
    """The append-only tables this database has (a migration may run before a later one adds one)."""
    existing = set(connection.introspection.table_names())
    return [table for table in TABLES if table in existing]


def install_append_only_triggers(connection: BaseDatabaseWrapper) -> None:
    if connection.vendor not in _STATEMENTS:
        raise ImproperlyConfigured(
            f"Countersign keeps its audit trail on PostgreSQL or SQLite; {connection.vendor} has no append-only guard"
        )
    for table in _guarded_tables(connection):
        _run(connection, _STATEMENTS[connection.vendor](table)[0])


def remove_append_only_triggers(connection: BaseDatabaseWrapper) -> None:
    """Only for maintenance and for tests that must bypass the guard (and say so)."""
    for table in _guarded_tables(connection):
        _run(connection, _STATEMENTS[connection.vendor](table)[1])
