"""What the connector contract suite (`tests/records/store/test_contract.py`) needs of each connector.

A connector joins the suite with a `Connector`: it binds the record type to the store under test for
the length of a test, makes records in the system, edits them there the way a person in the system's
own screens would (not through Countersign), and for a store outside the database, makes the store
unreachable. `CONNECTORS` lists them by name; the suite runs every case against each one.
"""

import itertools
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from psycopg import sql as pg

from records.catalogue import RECORD_TYPES
from records.store import RecordRef, RecordStore, StoreUnavailable, get_store, store_bind
from records.store.bottlecrm import BottleCrmStore
from records.store.registry import bindings_reload
from records.store.sql import SqlRecordStore
from tests.helpers.bottlecrm import (
    CONTACTS_TABLE,
    CUSTOMER_FIELDS,
    DATABASE_SKIP_REASON,
    ORGANISATION_SETTING,
    SKIP_REASON,
    BottleCrm,
    bottlecrm_database_url,
    bottlecrm_environment,
    one_test_at_a_time,
)
from tests.helpers.crm import crm_prepared
from tests.helpers.memory_store import MemoryRecordStore, bound

_numbers = itertools.count(70_001)


@dataclass(frozen=True)
class WriteHold:
    """A write to the system held back by the system's own lock on the record: `waiting()` says
    whether a write is waiting on it now, and `cut()` ends that write's connection before it lands
    (what a `kill -9` of its worker leaves behind)."""

    waiting: Callable[[], bool]
    cut: Callable[[], None]


def lock_waiters(url: str, table: str) -> list[int]:
    """The PostgreSQL backends of the database at `url` whose UPDATE of `table` waits on a lock."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            " AND query ILIKE %s AND pid <> pg_backend_pid()",
            [f"%UPDATE%{table}%"],
        ).fetchall()
    return [pid for (pid,) in rows]


def lock_waiters_end(url: str, table: str) -> None:
    """End the connections `lock_waiters` finds, as the server would once it noticed their client gone."""
    with psycopg.connect(url, autocommit=True) as conn:
        for pid in lock_waiters(url, table):
            conn.execute("SELECT pg_terminate_backend(%s)", [pid])


@contextmanager
def rows_held(
    url: str, table: str, where: str, params: list[Any], *, settings: Mapping[str, str] | None = None
) -> Iterator[WriteHold]:
    """Lock the rows of `table` that `where` selects, in a transaction of the database at `url`, until
    the block ends; an UPDATE of them meanwhile waits. `settings` are set for that transaction first
    (what a row-level security policy reads to show a connection its rows)."""
    statement = pg.SQL("SELECT 1 FROM {} WHERE {} FOR UPDATE").format(pg.Identifier(table), pg.SQL(where))  # type: ignore[arg-type]
    with psycopg.connect(url) as conn:
        for name, value in (settings or {}).items():
            conn.execute("SELECT set_config(%s, %s, true)", [name, value])
        if not conn.execute(statement, params).fetchall():
            raise AssertionError(f"no row of {table} where {where} {params} to hold")
        yield WriteHold(waiting=lambda: bool(lock_waiters(url, table)), cut=lambda: lock_waiters_end(url, table))
        conn.rollback()


@dataclass
class Connector:
    """One connector under the contract, bound while its `bind` context lasts.

    `field` is a catalogue field the binding maps, with three different values it may hold (`values`),
    and `title_field` the record type's title field, also mapped. `missing_id` is an id the system
    never holds. `hides` says whether archive and unarchive are configured. `outside` is True for a
    store that does not live in Countersign's database; only such a store has `unreachable`.
    `hold_writes(ref)` holds writes to a record at the system's own lock, for the crash cases (a real
    worker killed with the write waiting); a connector whose system offers no such lock has none.
    """

    name: str
    record_type: str
    field: str
    values: tuple[Any, Any, Any]
    title_field: str
    missing_id: str
    outside: bool
    hides: bool
    bind: Callable[[], AbstractContextManager[None]]
    create: Callable[[dict[str, Any]], RecordRef]
    edit_outside: Callable[[RecordRef, dict[str, Any]], None]
    unreachable: Callable[[], AbstractContextManager[None]] | None = None
    hold_writes: Callable[[RecordRef], AbstractContextManager[WriteHold]] | None = None
    marks: tuple[pytest.MarkDecorator, ...] = ()

    @property
    def store(self) -> RecordStore:
        return get_store(self.record_type)

    def new_record(self, **values: Any) -> RecordRef:
        """A record in the system with `field` at its first value, and `values` besides."""
        return self.create({self.field: self.values[0], self.title_field: "Maria Lopez", **values})


def _new_id(record_type: str) -> str:
    return f"{RECORD_TYPES[record_type].id_prefix}{next(_numbers)}"


def _create_through_store(record_type: str) -> Callable[[dict[str, Any]], RecordRef]:
    def create(values: dict[str, Any]) -> RecordRef:
        ref = RecordRef(record_type, _new_id(record_type))
        get_store(record_type).create_many(record_type, [(ref.record_id, values)])
        return ref

    return create


class UnreachableStore:
    """A store whose system does not answer: every call raises StoreUnavailable, as a connector does
    when its database refuses the connection or its API times out."""

    in_default_database = False

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, method: str) -> Callable[..., Any]:
        def unreachable(*args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailable(self.name, "connection refused")

        return unreachable


def builtin() -> Connector:
    def edit_outside(ref: RecordRef, values: dict[str, Any]) -> None:
        # Someone at the database (a script, the admin) writing the row without a Change.
        store = get_store(ref.record_type)
        store.write(ref, values, expected_version=store.fetch(ref, []).version)

    @contextmanager
    def as_it_is() -> Iterator[None]:
        yield

    return Connector(
        name="builtin",
        record_type="customer",
        field="priority",
        values=("normal", "high", "urgent"),
        title_field="full_name",
        missing_id="CUS-404404",
        outside=False,
        hides=True,
        bind=as_it_is,
        create=_create_through_store("customer"),
        edit_outside=edit_outside,
    )


def memory() -> Connector:
    """The dict-backed store of `tests.helpers.memory_store`: a store outside the database, in-process."""
    store = MemoryRecordStore()

    @contextmanager
    def bind() -> Iterator[None]:
        with ExitStack() as stack:
            for record_type in RECORD_TYPES:
                stack.enter_context(bound(record_type, store))
            yield

    def edit_outside(ref: RecordRef, values: dict[str, Any]) -> None:
        store.write(ref, values, expected_version=store.fetch(ref, []).version)

    @contextmanager
    def unreachable() -> Iterator[None]:
        with bound("customer", UnreachableStore("memory")):  # type: ignore[arg-type]
            yield

    return Connector(
        name="memory",
        record_type="customer",
        field="priority",
        values=("normal", "high", "urgent"),
        title_field="full_name",
        missing_id="CUS-404404",
        outside=True,
        hides=True,
        bind=bind,
        create=_create_through_store("customer"),
        edit_outside=edit_outside,
        unreachable=unreachable,
    )


def sql() -> Connector:
    """The `sql` connector on the company's `crm_contacts` table in a second PostgreSQL database
    (`tests.helpers.crm`), bound by loading the stores file an operator would write."""
    columns = {"full_name": "name", "priority": "prio"}
    crm = []

    @contextmanager
    def bind() -> Iterator[None]:
        crm.append(crm_prepared())
        environment = pytest.MonkeyPatch()
        environment.setenv("CRM_DATABASE_URL", crm[0].url)
        try:
            with tempfile.TemporaryDirectory() as folder:
                call_command("load_stores", str(crm[0].stores_file(Path(folder))))
            yield
        finally:
            bindings_reload()
            environment.undo()

    def edit_outside(ref: RecordRef, values: dict[str, Any]) -> None:
        # The company's own tools write the table and bump its version column, as the CRM does.
        assignments = pg.SQL(", ").join(pg.SQL("{} = %s").format(pg.Identifier(columns[name])) for name in values)
        statement = pg.SQL("UPDATE crm_contacts SET {}, row_version = row_version + 1 WHERE contact_ref = %s")
        crm[0].execute(statement.format(assignments).as_string(), [*values.values(), ref.record_id])

    @contextmanager
    def unreachable() -> Iterator[None]:
        # The same table named on a server that refuses the connection.
        refused = SqlRecordStore(
            record_type="customer",
            url="postgres://crm@127.0.0.1:1/crm",
            table="crm_contacts",
            key="contact_ref",
            version="row_version",
            fields=columns,
            archived="archived_at",
            connect_timeout=1,
        )
        with bound("customer", refused):
            yield

    def hold_writes(ref: RecordRef) -> AbstractContextManager[WriteHold]:
        return rows_held(crm[0].url, "crm_contacts", "contact_ref = %s", [ref.record_id])

    return Connector(
        name="sql",
        record_type="customer",
        field="priority",
        values=("normal", "high", "urgent"),
        title_field="full_name",
        missing_id="CUS-404404",
        outside=True,
        hides=True,
        bind=bind,
        create=_create_through_store("customer"),
        edit_outside=edit_outside,
        unreachable=unreachable,
        hold_writes=hold_writes,
        marks=(pytest.mark.postgres,),
    )


def bottlecrm() -> Connector:
    """The `bottlecrm` connector on a running BottleCRM (`tests.helpers.bottlecrm`): customers as its
    contacts, edited outside Countersign through BottleCRM's own API. Without BOTTLECRM_URL and
    BOTTLECRM_TOKEN its cases skip, saying so, and its crash cases without BOTTLECRM_DATABASE_URL (CI
    runs BottleCRM, sets all three, and fails on a skip)."""
    held: list[tuple[BottleCrm, BottleCrmStore]] = []

    @contextmanager
    def bind() -> Iterator[None]:
        environment = bottlecrm_environment()
        if environment is None:
            pytest.skip(SKIP_REASON)
        crm = BottleCrm(*environment)
        with one_test_at_a_time(crm.url):
            try:
                # Bound by the stores file an operator would load, for a worker this process starts too.
                with tempfile.TemporaryDirectory() as folder:
                    call_command("load_stores", str(crm.stores_file(Path(folder), "customer")))
                held.append((crm, crm.bind("customer")))
                yield
            finally:
                store_bind(record_type="customer", store=None)
                bindings_reload()
                crm.clean_up()

    def create(values: dict[str, Any]) -> RecordRef:
        crm, store = held[0]
        return crm.customer(store, **values)

    def edit_outside(ref: RecordRef, values: dict[str, Any]) -> None:
        crm, store = held[0]
        crm.patch(store, ref, {CUSTOMER_FIELDS[name]: value for name, value in values.items()})

    @contextmanager
    def unreachable() -> Iterator[None]:
        crm, _ = held[0]
        # The same token, sent to an address where nothing answers.
        refused = BottleCrmStore(
            url="http://127.0.0.1:1", token=crm.token, record_type="customer", fields=CUSTOMER_FIELDS, timeout=2
        )
        with bound("customer", refused):
            yield

    def hold_writes(ref: RecordRef) -> AbstractContextManager[WriteHold]:
        # BottleCRM saves a contact with an UPDATE of its row in its own database, which waits while
        # the row is locked there; its row-level security shows the lock the contact's organisation only.
        url = bottlecrm_database_url()
        if url is None:
            pytest.skip(DATABASE_SKIP_REASON)
        crm, store = held[0]
        organisation = crm.organisation(store, ref)
        return rows_held(
            url, CONTACTS_TABLE, "id = %s", [store.remote_id(ref)], settings={ORGANISATION_SETTING: organisation}
        )

    return Connector(
        name="bottlecrm",
        record_type="customer",
        field="shipping_address",
        values=("4 Old Mill Lane, Leith", "12 Harbour Road, Leith", "1 Quay Street, Leith"),
        title_field="full_name",
        missing_id="CUS-NOPE404",
        outside=True,
        hides=True,
        bind=bind,
        create=create,
        edit_outside=edit_outside,
        unreachable=unreachable,
        hold_writes=hold_writes,
    )


def connector_params(wanted: Callable[[Connector], bool] = lambda connector: True) -> list[Any]:
    """The connectors `wanted` keeps, as pytest parameters carrying each one's marks."""
    made = [make() for make in CONNECTORS.values()]
    return [pytest.param(connector.name, marks=connector.marks) for connector in made if wanted(connector)]


# Every connector the contract suite runs against. A new connector joins by adding its own here.
CONNECTORS: dict[str, Callable[[], Connector]] = {
    "builtin": builtin,
    "memory": memory,
    "sql": sql,
    "bottlecrm": bottlecrm,
}
