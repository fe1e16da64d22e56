"""The `sql` connector against a real second PostgreSQL database: the company's `crm_contacts` table,
whose columns keep their own names."""

import os
import threading
import time

import psycopg
import pytest
from django.core.management import call_command

from records.store import NotSupported, RecordNotFound, RecordRef, StoreUnavailable, VersionMismatch, get_store
from records.store.observed import ObservedStore
from records.store.sql import SqlRecordStore

pytestmark = pytest.mark.postgres

MARIA = RecordRef("customer", "CUS-9001")
JAMES = RecordRef("customer", "CUS-9002")
AIKO = RecordRef("customer", "CUS-9003")


@pytest.fixture
def store(db, crm, tmp_path) -> SqlRecordStore:
    call_command("load_stores", str(crm.stores_file(tmp_path)))
    bound = get_store("customer")
    assert isinstance(bound, ObservedStore), "reached observed, as every store outside the database"
    assert isinstance(bound.inner, SqlRecordStore)
    return bound.inner


@pytest.fixture
def sql_store(crm):
    """A store built straight from settings (not through a binding), closed at the end."""
    built: list[SqlRecordStore] = []

    def build(**settings) -> SqlRecordStore:
        base = {"database": crm.url, "table": "crm_contacts", "key": "contact_ref", "version": "row_version"}
        store = SqlRecordStore.from_binding(
            record_type="customer",
            settings=base | settings,
            fields={"full_name": "name", "priority": "prio"},
            side_effects={},
        )
        built.append(store)
        return store

    yield build
    for store in built:
        store.close()


def test_fetch_reads_the_mapped_columns_in_plain_form(store):
    maria = store.fetch(MARIA)
    assert maria.values == {
        "full_name": "Maria Lopez",
        "email": "maria@example.com",
        "shipping_address": "4 Old Mill Lane, Leith",
        "priority": "normal",
        "tags": ["vip"],
    }
    assert (maria.version, maria.title, maria.archived, maria.deleted) == (1, "Maria Lopez", False, False)
    assert store.fetch(AIKO, ["shipping_address"]).values == {"shipping_address": ""}  # NULL reads as empty
    assert store.fetch(MARIA, []).values == {}


def test_fetch_refuses_a_missing_record_and_a_field_the_binding_does_not_map(store):
    with pytest.raises(RecordNotFound, match="no customer 'CUS-0000'"):
        store.fetch(RecordRef("customer", "CUS-0000"))
    with pytest.raises(NotSupported, match="does not map phone"):
        store.fetch(MARIA, ["phone"])


def test_fetch_many_answers_those_that_exist(store):
    found = store.fetch_many("customer", ["CUS-9001", "CUS-9003", "CUS-0000"], ["priority"])
    assert {record_id: state.values for record_id, state in found.items()} == {
        "CUS-9001": {"priority": "normal"},
        "CUS-9003": {"priority": "low"},
    }
    assert store.fetch_query(MARIA) is None and store.write_query(MARIA, {}, 1) is None
    assert store.in_default_database is False


def test_a_write_is_a_compare_and_set_that_moves_the_version_in_the_crm_table(store, crm):
    written = store.write(MARIA, {"shipping_address": "12 Harbour Road, Leith", "tags": ["vip", "moved"]}, 1)
    assert (written.version, written.values["shipping_address"]) == (2, "12 Harbour Road, Leith")
    row = crm.contact("CUS-9001")
    assert (row["postal_address"], row["labels"], row["row_version"]) == ("12 Harbour Road, Leith", ["vip", "moved"], 2)
    assert row["name"] == "Maria Lopez", "columns not written are left alone"


def test_a_stale_write_is_refused_and_writes_nothing(store, crm):
    crm.execute("UPDATE crm_contacts SET prio = 'urgent', row_version = row_version + 1 WHERE contact_ref = 'CUS-9001'")
    with pytest.raises(VersionMismatch) as refused:
        store.write(MARIA, {"priority": "low"}, expected_version=1)
    assert (refused.value.expected, refused.value.actual) == (1, 2)
    assert (crm.contact("CUS-9001")["prio"], crm.contact("CUS-9001")["row_version"]) == ("urgent", 2)
    with pytest.raises(RecordNotFound):
        store.write(RecordRef("customer", "CUS-0000"), {"priority": "low"}, expected_version=1)


def test_archive_and_delete_use_their_columns_and_keep_the_first_moment(store, crm):
    archived = store.set_hidden(JAMES, archived=True, deleted=False, expected_version=1)
    assert (archived.archived, archived.deleted, archived.version) == (True, False, 2)
    first = crm.contact("CUS-9002")["archived_at"]
    assert first is not None
    again = store.set_hidden(JAMES, archived=True, deleted=True, expected_version=2)
    row = crm.contact("CUS-9002")
    assert (again.deleted, row["archived_at"], row["row_version"]) == (True, first, 3)
    assert row["deleted_at"] is not None
    back = store.set_hidden(JAMES, archived=False, deleted=False, expected_version=3)
    assert (back.archived, back.deleted) == (False, False)
    assert crm.contact("CUS-9002")["archived_at"] is None
    with pytest.raises(VersionMismatch):
        store.set_hidden(JAMES, archived=True, deleted=False, expected_version=3)


def test_without_an_archive_column_archive_is_refused_and_not_supported(crm, sql_store):
    store = sql_store()
    assert [store.supports(action) for action in ("update", "archive", "delete", "merge")] == [
        True,
        False,
        False,
        False,
    ]
    with pytest.raises(NotSupported, match="cannot archive"):
        store.set_hidden(MARIA, archived=True, deleted=False, expected_version=1)
    assert crm.contact("CUS-9001")["row_version"] == 1


def test_snapshot_and_restore_put_a_record_back_at_the_version_counted(store, crm):
    before = store.snapshot(MARIA)
    assert before == {
        "values": store.fetch(MARIA).values,
        "version": 1,
        "archived_at": None,
        "deleted_at": None,
    }
    store.write(MARIA, {"shipping_address": "Elsewhere"}, 1)
    store.set_hidden(MARIA, archived=True, deleted=False, expected_version=2)
    store.restore_many("customer", [("CUS-9001", {**before, "version": 4}, 3)])
    row = crm.contact("CUS-9001")
    assert (row["postal_address"], row["archived_at"], row["row_version"]) == ("4 Old Mill Lane, Leith", None, 4)


def test_a_restore_with_one_stale_record_restores_none_of_them(store, crm):
    maria, james = store.snapshot(MARIA), store.snapshot(JAMES)
    store.write(MARIA, {"priority": "urgent"}, 1)
    store.write(JAMES, {"priority": "urgent"}, 1)
    with pytest.raises(VersionMismatch):
        store.restore_many(
            "customer", [("CUS-9001", {**maria, "version": 3}, 2), ("CUS-9002", {**james, "version": 3}, 1)]
        )
    assert [crm.contact(ref)["prio"] for ref in ("CUS-9001", "CUS-9002")] == ["urgent", "urgent"]
    assert store.snapshot_many("customer", ["CUS-9001", "CUS-0000"]).keys() == {"CUS-9001"}


def test_create_many_inserts_new_records_at_version_one(store, crm):
    store.create_many("customer", [("CUS-9100", {"full_name": "Noor Haddad", "tags": ["new"]})])
    row = crm.contact("CUS-9100")
    assert (row["name"], row["labels"], row["row_version"], row["prio"]) == ("Noor Haddad", ["new"], 1, "normal")


def test_it_moves_no_related_rows(store):
    assert store.referring("customer", "customer", "CUS-9001") == []
    assert store.move_references("customer", "customer", "CUS-9001", "CUS-9002") == []
    assert store.supports("merge") is False


def test_a_closed_port_is_unavailable_quickly(crm, sql_store):
    store = sql_store(database="postgres://postgres@127.0.0.1:1/crm")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="sql store of customer"):
        store.fetch(MARIA)
    assert time.monotonic() - started < 3


def test_a_write_that_waits_past_the_statement_timeout_is_unavailable_and_writes_nothing(crm, sql_store):
    store = sql_store(statement_timeout=1)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        with psycopg.connect(crm.url) as conn:
            conn.execute("SELECT 1 FROM crm_contacts WHERE contact_ref = 'CUS-9001' FOR UPDATE")
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    locked.wait(5)
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable, match="statement timeout"):
            store.write(MARIA, {"priority": "low"}, 1)
        assert time.monotonic() - started < 3
    finally:
        release.set()
        holder.join()
    assert crm.contact("CUS-9001")["prio"] == "normal"
    assert store.write(MARIA, {"priority": "low"}, 1).version == 2, "the store connects again after the timeout"


def test_a_read_on_a_connection_that_dropped_connects_again(crm, sql_store):
    store = sql_store()
    store.fetch(MARIA)
    crm.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'countersign'")
    assert store.fetch(MARIA).values["full_name"] == "Maria Lopez"


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_process_opens_its_own_connection_and_leaves_the_parent_s_alone(crm, sql_store):
    store = sql_store()
    store.fetch(MARIA)
    parent_pid = store._local.conn.info.backend_pid
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # a worker's pool process, forked with the store already connected
        try:
            version = store.write(MARIA, {"priority": "high"}, 1).version
            os.write(writing, f"{version} {store._local.conn.info.backend_pid}".encode())
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    version, child_pid = os.read(reading, 64).decode().split()
    assert version == "2"
    assert int(child_pid) != parent_pid, "the child wrote on a connection of its own"
    assert store._local.conn.info.backend_pid == parent_pid
    assert store.fetch(MARIA).values["priority"] == "high", "the parent's connection still answers"
