"""The database role the app runs as, apart from the role that owns the tables.

Migrations run as the owner. The web processes, workers and beat connect as an app role that may read
and write every table but the trail's own: there it may insert and read, and nothing more. Only a
table's owner may alter it, disable its triggers or drop it, and the app role is refused UPDATE,
DELETE and TRUNCATE on it, so whoever holds the app's credentials cannot rewrite the trail.
"""

from dataclasses import dataclass

from django.db import connection
from psycopg import sql

from audit.triggers import TABLES


class RoleError(ValueError):
    pass


@dataclass(frozen=True)
class RoleGrant:
    role: str
    created: bool
    database: str


def _role_exists(role: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        return cursor.fetchone() is not None


def app_role_grant(*, role: str, password: str = "") -> RoleGrant:
    """Create `role` (a login role, with `password`) unless it exists, and grant it what the app needs
    on this database: full DML on every table and sequence of the schema, now and for the tables later
    migrations create, except UPDATE, DELETE and TRUNCATE on the trail's tables. Run it as the owner,
    after every migrate (it is idempotent). A `password` given for an existing role becomes its password."""
    if connection.vendor != "postgresql":
        raise RoleError("database roles are a PostgreSQL setting; this database is " + connection.vendor)
    if not role or not role.replace("_", "").isalnum():
        raise RoleError(f"role: {role!r} is not a plain role name (letters, digits and underscores)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database()")
        owner, database = cursor.fetchone()
    if role == owner:
        raise RoleError(f"role: {role!r} is the role running this command, which owns the tables; name another")
    created = not _role_exists(role)
    if created and not password:
        raise RoleError(f"password: role {role!r} does not exist yet, and a new login role needs a password")
    name = sql.Identifier(role)
    statements: list[sql.Composable] = []
    if created:
        statements.append(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(name, sql.Literal(password)))
    elif password:
        statements.append(sql.SQL("ALTER ROLE {} PASSWORD {}").format(name, sql.Literal(password)))
    statements += [
        sql.SQL("ALTER ROLE {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS").format(name),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), name),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(name),
        sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}").format(name),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
        ).format(sql.Identifier(owner), name),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {}"
        ).format(sql.Identifier(owner), name),
        *(
            sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {} FROM {}").format(
                sql.Identifier(table), name
            )
            for table in TABLES
        ),
    ]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    return RoleGrant(role=role, created=created, database=database)
