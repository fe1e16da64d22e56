"""Binds the poisoned store in a worker process (see `tests.approvals.faults.poisoned_settings`)."""

from django.apps import AppConfig


class PoisonedStoreBinding(AppConfig):
    """Puts customers on the poisoned store in this process, once the apps are ready."""

    name = "tests.approvals.faults"
    label = "countersign_test_poisoned_store"
    verbose_name = "A store a value poisons"

    def ready(self) -> None:
        from records.store import store_bind
        from tests.approvals.faults.poisoned import PoisonedStore

        store_bind(record_type="customer", store=PoisonedStore())
