"""A company's own CRM database beside Countersign's: a second PostgreSQL database on the same server,
holding a `crm_contacts` table whose columns do not use the catalogue's names.

Its URL is COUNTERSIGN_TEST_CRM_DATABASE_URL, else DATABASE_URL with `_crm` after the database name;
under pytest-xdist each worker's name follows (`_crm_gw0`), as its tests remake the table.
The database is created when missing; the table is made again, with the same few contacts, for
each test that asks for it.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

CONTACTS = [
    ("CUS-9001", "Maria Lopez", "maria@example.com", "4 Old Mill Lane, Leith", "normal", ["vip"]),
    ("CUS-9002", "James Smith", "james@example.com", "", "high", []),
    ("CUS-9003", "Aiko Tanaka", "aiko@example.com", None, "low", ["late-payer", "eu"]),
]

TABLE = """
CREATE TABLE crm_contacts (
    contact_ref text PRIMARY KEY,
    name varchar(200) NOT NULL,
    email_address text NOT NULL DEFAULT '',
    postal_address text,
    prio text NOT NULL DEFAULT 'normal',
    labels text[] NOT NULL DEFAULT '{}',
    is_verified boolean NOT NULL DEFAULT false,
    lifetime_value double precision,
    row_version integer NOT NULL DEFAULT 1,
    archived_at timestamptz,
    deleted_at timestamptz
)
"""

# The stores file the tests load, as an operator would write it.
STORES_FILE = """
stores:
  customer:
    connector: sql
    database: ${CRM_DATABASE_URL}
    table: crm_contacts
    key: contact_ref
    version: row_version
    archived: archived_at
    deleted: deleted_at
    fields: {full_name: name, email: email_address, shipping_address: postal_address, priority: prio, tags: labels}
"""


def crm_database_url() -> str:
    # Each pytest-xdist worker (gw0, gw1, ...) remakes the table for its own tests: one database each.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    explicit = os.environ.get("COUNTERSIGN_TEST_CRM_DATABASE_URL")
    parts = urlsplit(explicit or os.environ["DATABASE_URL"])
    name = parts.path.rstrip("/") + ("" if explicit else "_crm")
    return urlunsplit(parts._replace(path=f"{name}_{worker}" if worker else name))


def _create_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@dataclass
class Crm:
    """The CRM database, as the company's own tools see it (not through Countersign)."""

    url: str

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute(statement, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def contact(self, ref: str) -> dict[str, Any]:
        with psycopg.connect(self.url, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cursor:
            row = cursor.execute("SELECT * FROM crm_contacts WHERE contact_ref = %s", [ref]).fetchone()
        assert row is not None, f"no contact {ref} in the CRM"
        return row

    def reset(self) -> None:
        self.execute("DROP TABLE IF EXISTS crm_contacts")
        self.execute(TABLE)
        with psycopg.connect(self.url, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO crm_contacts (contact_ref, name, email_address, postal_address, prio, labels) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                CONTACTS,
            )

    def stores_file(self, folder: Path, text: str = STORES_FILE) -> Path:
        path = folder / "stores.yaml"
        path.write_text(text, encoding="utf-8")
        return path


def crm_prepared() -> Crm:
    url = crm_database_url()
    _create_database(url)
    crm = Crm(url)
    crm.reset()
    return crm
