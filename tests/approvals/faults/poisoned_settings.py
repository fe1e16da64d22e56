"""The test settings, for a worker process whose customers live on the poisoned built-in store
(see `tests.approvals.faults.poisoned`)."""

from config.settings.test import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.approvals.faults.poisoned_app.PoisonedStoreBinding"]  # noqa: F405
