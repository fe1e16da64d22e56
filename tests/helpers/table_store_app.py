"""Binds a test's table store in a worker process (see `tests.helpers.table_store_settings`)."""

import os
from pathlib import Path

from django.apps import AppConfig


class TableStoreBinding(AppConfig):
    """Binds the record type named in COUNTERSIGN_TEST_STORE_TYPE to the table store in the file named
    in COUNTERSIGN_TEST_STORE_FILE, once the apps are ready."""

    name = "tests.helpers"
    label = "countersign_test_table_store"
    verbose_name = "A test's table store"

    def ready(self) -> None:
        from records.store import store_bind
        from tests.helpers.table_store import TableRecordStore

        store_bind(
            record_type=os.environ["COUNTERSIGN_TEST_STORE_TYPE"],
            store=TableRecordStore(Path(os.environ["COUNTERSIGN_TEST_STORE_FILE"])),
        )
