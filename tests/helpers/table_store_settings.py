"""The test settings, for a worker process whose records of one type live in a test's table store
(see `tests.helpers.table_store`): COUNTERSIGN_TEST_STORE_TYPE names the record type,
COUNTERSIGN_TEST_STORE_FILE the SQLite file."""

from config.settings.test import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.helpers.table_store_app.TableStoreBinding"]  # noqa: F405
