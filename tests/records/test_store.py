import pytest

from records.store import RecordNotFound, RecordRef, VersionMismatch, get_store
from tests.helpers.factories import CustomerFactory, OrderFactory


def test_fetch_returns_plain_values_and_the_version(db):
    order = OrderFactory(amount="12.50")
    state = get_store().fetch(RecordRef("order", order.record_id), ["customer", "amount"])
    assert state.values == {"customer": order.customer.record_id, "amount": "12.50"}
    assert state.version == 1


def test_write_bumps_the_version_and_refuses_a_stale_one(db):
    customer = CustomerFactory()
    ref = RecordRef("customer", customer.record_id)
    store = get_store()
    state = store.write(ref, {"shipping_address": "12 Harbour Road, Leith"}, expected_version=1)
    assert state.version == 2
    customer.refresh_from_db()
    assert customer.shipping_address == "12 Harbour Road, Leith"
    with pytest.raises(VersionMismatch):
        store.write(ref, {"shipping_address": "elsewhere"}, expected_version=1)
    customer.refresh_from_db()
    assert customer.shipping_address == "12 Harbour Road, Leith"


def test_snapshot_and_restore_put_everything_back(db):
    customer = CustomerFactory(tags=["vip"])
    ref = RecordRef("customer", customer.record_id)
    store = get_store()
    snapshot = store.snapshot(ref)
    store.write(ref, {"tags": [], "priority": "urgent"}, expected_version=1)
    store.set_hidden(ref, archived=True, deleted=False, expected_version=2)
    restored = store.restore(ref, snapshot, expected_version=3)
    assert restored.values == snapshot["values"]
    assert restored.version == 4
    assert not restored.archived


def test_unknown_records_and_types_are_not_found(db):
    with pytest.raises(RecordNotFound, match="no customer 'CUS-404'"):
        get_store().fetch(RecordRef("customer", "CUS-404"))
    with pytest.raises(RecordNotFound, match="unknown record type 'invoice'"):
        get_store().fetch(RecordRef("invoice", "INV-1"))
