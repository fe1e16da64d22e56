from typing import Any

from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


def _guard_after_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """Put the append-only triggers back after every migrate: rebuilding a table on SQLite drops them."""
    from audit.triggers import install_append_only_triggers, install_chain_head

    install_append_only_triggers(connections[using])
    install_chain_head(connections[using])


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from audit import access, signals  # noqa: F401 - signals connects its receivers on import
        from core import navigation

        access.connect()
        navigation.register("Trail", "trail", order=40)
        post_migrate.connect(_guard_after_migrate, sender=self)
