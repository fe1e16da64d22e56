"""Which store a record type is reached through: its binding, built from the environment at run time,
else the built-in store; and a running process follows a new binding without a restart."""

import pytest
from django.core.management import call_command
from django.test import override_settings

from records.models import StoreBinding
from records.store import StoreUnavailable, get_store, store_bind
from records.store.connectors import CONNECTORS, UnknownConnector, connector_class
from records.store.observed import ObservedStore
from records.store.registry import bindings_reload
from records.store.sql import SqlRecordStore
from tests.helpers.crm import STORES_FILE
from tests.helpers.memory_store import MemoryRecordStore

CRM_URL = "postgres://crm@127.0.0.1:5432/crm_one"


def _connector_store(record_type: str) -> object:
    """The connector's own store behind `get_store` (a store outside the database is reached observed)."""
    store = get_store(record_type)
    assert isinstance(store, ObservedStore), store
    return store.inner


@pytest.fixture
def stores_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_DATABASE_URL", CRM_URL)
    path = tmp_path / "stores.yaml"
    path.write_text(STORES_FILE, encoding="utf-8")
    return path


def test_a_record_type_without_a_binding_is_on_the_built_in_store(db):
    assert type(get_store("customer")).__name__ == "DjangoRecordStore"


def test_a_bound_record_type_is_reached_through_its_connector_built_from_the_environment(db, stores_file):
    call_command("load_stores", str(stores_file))
    store = _connector_store("customer")
    assert isinstance(store, SqlRecordStore)
    assert store.url == CRM_URL
    assert store.columns["shipping_address"] == "postal_address"
    assert _connector_store("customer") is store, "built once, so its connection is kept"
    assert type(get_store("order")).__name__ == "DjangoRecordStore"


def test_a_changed_binding_builds_a_new_store(db, stores_file, monkeypatch):
    call_command("load_stores", str(stores_file))
    first = _connector_store("customer")
    stores_file.write_text(STORES_FILE.replace("crm_contacts", "contacts"), encoding="utf-8")
    call_command("load_stores", str(stores_file))
    second = _connector_store("customer")
    assert second is not first
    assert isinstance(second, SqlRecordStore) and second.table_name == "contacts"


def test_a_variable_missing_when_the_store_is_built_makes_it_unavailable(db, stores_file, monkeypatch):
    call_command("load_stores", str(stores_file))
    monkeypatch.delenv("CRM_DATABASE_URL")
    bindings_reload()
    StoreBinding.objects.update(digest="another")  # as another process would see it: not built yet here
    with pytest.raises(StoreUnavailable, match="the environment variable CRM_DATABASE_URL is not set"):
        get_store("customer")


def test_a_pinned_store_comes_before_the_binding_until_it_is_unpinned(db, stores_file):
    call_command("load_stores", str(stores_file))
    memory = MemoryRecordStore()
    try:
        assert store_bind(record_type="customer", store=memory) is None
        assert _connector_store("customer") is memory
    finally:
        pinned = store_bind(record_type="customer", store=None)
    assert pinned is memory
    assert isinstance(_connector_store("customer"), SqlRecordStore)


@override_settings(COUNTERSIGN={"STORES_REFRESH_SECONDS": 0})
def test_a_process_reads_the_bindings_again_after_the_interval(db, stores_file):
    bindings_reload()  # the bindings were read before this test's interval (none) was in force
    assert type(get_store("customer")).__name__ == "DjangoRecordStore"
    # Another process loads a stores file: this one was not told, and reads the bindings again.
    StoreBinding.objects.create(
        record_type="customer",
        connector="sql",
        settings={"database": "${CRM_DATABASE_URL}", "table": "t", "key": "k", "version": "v"},
        fields={"full_name": "name"},
        digest="from-another-process",
    )
    assert isinstance(_connector_store("customer"), SqlRecordStore)


def test_within_the_interval_the_bindings_are_not_read_again(db, stores_file, django_assert_num_queries):
    get_store("customer")
    with django_assert_num_queries(0):
        for _ in range(10):
            get_store("customer")


def test_a_connector_named_but_not_installed_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(CONNECTORS, "helpdesk", "records.store.helpdesk.HelpDeskStore")
    with pytest.raises(
        UnknownConnector, match=r"connector 'helpdesk' is not installed here \(no module records.store.helpdesk\)"
    ):
        connector_class("helpdesk")
    with pytest.raises(UnknownConnector, match="unknown connector 'ftp'; known: builtin, sql"):
        connector_class("ftp")
