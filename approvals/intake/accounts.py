"""Service accounts: a pipeline's identity, with a token that is shown once and stored hashed."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.models import ServiceAccount, Workflow
from audit.services import Actor, audit_record
from core.errors import InvalidTransition, ValidationFailed

TOKEN_PREFIX = "cs_"  # noqa: S105 - a public marker, not a secret


@dataclass(frozen=True)
class IssuedToken:
    account: ServiceAccount
    token: str


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def service_account_create(
    *,
    workflow: Workflow,
    name: str,
    actor: Actor,
    expires_at: datetime | None = None,
    callback_url: str = "",
) -> IssuedToken:
    """Create a service account and its token. The token is returned once and never stored."""
    name = name.strip()
    if not name:
        raise ValidationFailed([("name", "is required")])
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed([("expires_at", "must be in the future")])
    prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    try:
        with transaction.atomic():
            account = ServiceAccount.objects.create(
                workflow=workflow,
                name=name,
                token_prefix=prefix,
                token_hash=hash_token(token),
                expires_at=expires_at,
                callback_url=callback_url,
                callback_secret=secrets.token_urlsafe(32) if callback_url else "",
            )
            audit_record(
                action="token.created",
                actor=actor,
                workflow_slug=workflow.slug,
                details={"service_account": account.pk, "name": name, "prefix": prefix},
            )
    except IntegrityError:
        raise ValidationFailed([("name", f"workflow {workflow.slug} already has a service account '{name}'")]) from None
    return IssuedToken(account=account, token=token)


def service_account_revoke(*, account: ServiceAccount, actor: Actor) -> ServiceAccount:
    with transaction.atomic():
        account = ServiceAccount.objects.select_for_update().select_related("workflow").get(pk=account.pk)
        if account.revoked_at is not None:
            raise InvalidTransition(f"service account {account} was already revoked")
        account.revoked_at = timezone.now()
        account.save(update_fields=["revoked_at"])
        audit_record(
            action="token.revoked",
            actor=actor,
            workflow_slug=account.workflow.slug,
            details={"service_account": account.pk, "name": account.name, "prefix": account.token_prefix},
        )
    return account


def service_account_authenticate(*, token: str) -> ServiceAccount | None:
    """The usable account that holds `token`, or None. Notes the use at most once a minute."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    account = ServiceAccount.objects.select_related("workflow").filter(token_hash=hash_token(token)).first()
    now = timezone.now()
    if account is None or not account.is_usable(now=now):
        return None
    touch_every = timedelta(seconds=settings.COUNTERSIGN["SERVICE_ACCOUNT_TOUCH_SECONDS"])
    if account.last_used_at is None or now - account.last_used_at > touch_every:
        ServiceAccount.objects.filter(pk=account.pk).update(last_used_at=now)
        account.last_used_at = now
    return account
