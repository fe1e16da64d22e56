"""The `RecordStore` contract, held by the built-in store and by a store outside the database alike.

Every test here speaks only the protocol, so each runs twice: on the built-in store, and on a
dict-backed store bound to every record type in its place.
"""

import threading
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from django.db import OperationalError, connection, transaction

from records.catalogue import RECORD_TYPES
from records.store import RecordNotFound, RecordRef, RecordStore, VersionMismatch, get_store, store_bind
from records.store.observed import ObservedStore
from tests.helpers.memory_store import MemoryRecordStore, bound

MARIA = RecordRef("customer", "CUS-1")
JAMES = RecordRef("customer", "CUS-2")


@pytest.fixture(params=["built-in", "in memory"])
def store(request: pytest.FixtureRequest, db: None) -> Iterator[RecordStore]:
    if request.param == "built-in":
        yield get_store("customer")
        return
    memory = MemoryRecordStore()
    with ExitStack() as stack:
        for record_type in RECORD_TYPES:
            stack.enter_context(bound(record_type, memory))
        yield memory


def _customers(store: RecordStore) -> None:
    store.create_many(
        "customer",
        [
            ("CUS-1", {"full_name": "Maria Lopez", "shipping_address": "4 Old Mill Lane", "tags": ["vip"]}),
            ("CUS-2", {"full_name": "James Smith"}),
        ],
    )


def _orders_of_maria(store: RecordStore) -> None:
    _customers(store)
    store.create_many(
        "order",
        [
            ("ORD-1", {"customer": "CUS-1", "order_number": "#1", "amount": "12.50"}),
            ("ORD-2", {"customer": "CUS-1", "order_number": "#2", "amount": "7.00"}),
            ("ORD-3", {"customer": "CUS-2", "order_number": "#3", "amount": "1.00"}),
        ],
    )


def test_fetch_returns_plain_values_the_title_and_version_one_for_a_new_record(store):
    _orders_of_maria(store)
    order = get_store("order").fetch(RecordRef("order", "ORD-2"), ["customer", "amount"])
    assert (order.values, order.version) == ({"customer": "CUS-1", "amount": "7.00"}, 1)
    maria = store.fetch(MARIA)
    assert (maria.title, maria.values["tags"], maria.archived, maria.deleted) == ("Maria Lopez", ["vip"], False, False)
    assert store.fetch(MARIA, []).values == {}


def test_unknown_records_are_not_found_and_fetch_many_leaves_them_out(store):
    _customers(store)
    with pytest.raises(RecordNotFound, match="no customer 'CUS-404'"):
        store.fetch(RecordRef("customer", "CUS-404"))
    found = store.fetch_many("customer", ["CUS-2", "CUS-404", "CUS-1"], fields=["full_name"])
    assert {record_id: state.values for record_id, state in found.items()} == {
        "CUS-1": {"full_name": "Maria Lopez"},
        "CUS-2": {"full_name": "James Smith"},
    }


def test_write_moves_the_version_up_one_and_refuses_a_stale_one_writing_nothing(store):
    _customers(store)
    written = store.write(MARIA, {"shipping_address": "12 Harbour Road", "priority": "urgent"}, expected_version=1)
    assert (written.version, written.values["shipping_address"]) == (2, "12 Harbour Road")
    with pytest.raises(VersionMismatch) as stale:
        store.write(MARIA, {"shipping_address": "elsewhere"}, expected_version=1)
    assert (stale.value.expected, stale.value.actual) == (1, 2)
    now = store.fetch(MARIA)
    assert (now.version, now.values["shipping_address"], now.values["priority"]) == (2, "12 Harbour Road", "urgent")
    with pytest.raises(RecordNotFound):
        store.write(RecordRef("customer", "CUS-404"), {"priority": "low"}, expected_version=1)


def test_a_write_naming_a_record_that_does_not_exist_is_refused(store):
    _orders_of_maria(store)
    orders = get_store("order")
    with pytest.raises(RecordNotFound, match="no customer 'CUS-404'"):
        orders.write(RecordRef("order", "ORD-1"), {"customer": "CUS-404"}, expected_version=1)
    assert orders.fetch(RecordRef("order", "ORD-1")).values["customer"] == "CUS-1"
    with pytest.raises(RecordNotFound, match="no customer 'CUS-404'"):
        orders.create_many("order", [("ORD-9", {"customer": "CUS-404", "order_number": "#9", "amount": "1"})])


def test_hiding_keeps_the_first_moment_and_unhiding_brings_the_record_back(store):
    _customers(store)
    archived = store.set_hidden(MARIA, archived=True, deleted=False, expected_version=1)
    first = store.snapshot(MARIA)["archived_at"]
    deleted = store.set_hidden(MARIA, archived=True, deleted=True, expected_version=2)
    assert (archived.version, archived.archived, deleted.version, deleted.deleted) == (2, True, 3, True)
    assert store.snapshot(MARIA)["archived_at"] == first is not None
    with pytest.raises(VersionMismatch):
        store.set_hidden(MARIA, archived=False, deleted=False, expected_version=2)
    back = store.set_hidden(MARIA, archived=False, deleted=False, expected_version=3)
    assert (back.version, back.archived, back.deleted) == (4, False, False)
    assert store.fetch(MARIA).values["full_name"] == "Maria Lopez"


def test_snapshot_and_restore_put_values_and_visibility_back_at_the_version_asked(store):
    _customers(store)
    snapshot = store.snapshot(MARIA)
    store.write(MARIA, {"tags": [], "priority": "urgent"}, expected_version=1)
    store.set_hidden(MARIA, archived=True, deleted=False, expected_version=2)
    with pytest.raises(VersionMismatch):
        store.restore_many("customer", [("CUS-1", {**snapshot, "version": 4}, 2)])
    store.restore_many("customer", [("CUS-1", {**snapshot, "version": 4}, 3)])
    assert store.snapshot(MARIA) == {**snapshot, "version": 4}


def test_snapshot_many_leaves_out_what_does_not_exist(store):
    _customers(store)
    found = store.snapshot_many("customer", ["CUS-1", "CUS-404"], lock=True)
    assert list(found) == ["CUS-1"]
    assert found["CUS-1"] == store.snapshot(MARIA)


def test_a_merge_moves_every_referring_record_each_one_version_up(store):
    _orders_of_maria(store)
    orders = get_store("order")
    assert orders.referring("order", "customer", "CUS-1") == ["ORD-1", "ORD-2"]
    moved = orders.move_references("order", "customer", "CUS-1", "CUS-2")
    assert [(m.ref.record_id, m.field, m.version_before, m.version_after) for m in moved] == [
        ("ORD-1", "customer", 1, 2),
        ("ORD-2", "customer", 1, 2),
    ]
    assert orders.referring("order", "customer", "CUS-1") == []
    assert orders.referring("order", "customer", "CUS-2") == ["ORD-1", "ORD-2", "ORD-3"]
    assert orders.move_references("order", "customer", "CUS-1", "CUS-2") == []


def test_the_built_in_store_joins_the_callers_round_trip_and_a_store_elsewhere_does_not(store):
    from core.roundtrip import run_together

    _customers(store)
    read = store.fetch_query(MARIA, ["full_name"], lock=True)
    write = store.write_query(MARIA, {"priority": "high"}, expected_version=1)
    if isinstance(store, MemoryRecordStore):
        assert (read, write) == (None, None)
        return
    assert read is not None and write is not None
    fetched, written = run_together([read.statement, write.statement])
    assert read.state(fetched).values == {"full_name": "Maria Lopez"}
    assert write.state(written).version == 2
    stale = store.write_query(MARIA, {"priority": "low"}, expected_version=1)
    assert stale is not None
    with pytest.raises(VersionMismatch):
        stale.state(run_together([stale.statement])[0])
    assert store.fetch(MARIA).values["priority"] == "high"


def test_an_unknown_record_type_has_no_store_and_cannot_be_bound():
    with pytest.raises(RecordNotFound, match="unknown record type 'invoice'"):
        get_store("invoice")
    with pytest.raises(ValueError, match="unknown record type 'invoice'"):
        store_bind(record_type="invoice", store=MemoryRecordStore())


def test_binding_a_record_type_changes_the_store_its_callers_reach(db):
    memory = MemoryRecordStore()
    built_in = get_store("ticket")
    with bound("ticket", memory):
        # A store outside the database is reached observed, so that edits made there reach the trail.
        bound_store = get_store("ticket")
        assert isinstance(bound_store, ObservedStore) and bound_store.inner is memory
        assert get_store("customer") is built_in
    assert get_store("ticket") is built_in


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_locked_fetch_holds_off_other_writers_until_the_transaction_ends():
    store = get_store("customer")
    _customers(store)
    waited: list[str] = []

    def write_meanwhile() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '200ms'")
                store.write(MARIA, {"priority": "low"}, expected_version=1)
        except OperationalError as error:
            waited.append(type(error.__cause__).__name__)
        finally:
            connection.close()

    with transaction.atomic():
        store.fetch(MARIA, [], lock=True)
        other = threading.Thread(target=write_meanwhile)
        other.start()
        other.join()
    assert waited == ["LockNotAvailable"]
    assert store.write(MARIA, {"priority": "low"}, expected_version=1).version == 2
