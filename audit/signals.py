from typing import Any

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from audit.models import ActorKind
from audit.services import Actor, audit_record


@receiver(user_login_failed)
def record_failed_login(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        action="login.failed",
        actor=Actor(kind=ActorKind.SYSTEM, label=username or "unknown"),
        reason="wrong username or password",
        details={"username": username, "ip": request.META.get("REMOTE_ADDR", "") if request else ""},
    )
