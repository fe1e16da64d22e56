"""Sign-in security events. Failed sign-ins are counted by django-axes (its own tables, per user name
and address); the trail keeps one event per lockout, so a password-guessing run costs neither hashing
time nor a permanent row per guess."""

from typing import Any

from axes.signals import user_locked_out
from django.dispatch import receiver

from audit.services import lockout_record


@receiver(user_locked_out)
def record_lockout(
    sender: Any, request: Any = None, username: str | None = None, ip_address: str | None = None, **kwargs: Any
) -> None:
    lockout_record(username=str(username or "")[:150], ip_address=str(ip_address or ""))
