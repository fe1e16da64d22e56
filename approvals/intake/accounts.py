"""Service accounts: a pipeline's identity, with a token that is shown once and stored hashed."""

import hashlib
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.models import ServiceAccount, Workflow
from approvals.workflows.rights import owns_workflow
from audit.services import Actor, audit_record, user_label
from core.errors import InvalidTransition, NotAllowed, NotFound, ValidationFailed

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


def service_account_named(*, workflow_slug: str, name: str) -> ServiceAccount:
    """The service account `name` of the workflow `workflow_slug`; NotFound naming what is missing."""
    workflow = Workflow.objects.filter(slug=workflow_slug).first()
    if workflow is None:
        raise NotFound(f"no workflow '{workflow_slug}'", field="workflow")
    account = ServiceAccount.objects.select_related("workflow").filter(workflow=workflow, name=name.strip()).first()
    if account is None:
        raise NotFound(f"workflow {workflow.slug} has no service account '{name}'", field="name")
    return account


def service_account_of(*, workflow_slug: str, account_id: int) -> ServiceAccount:
    """One service account of the workflow `workflow_slug`, with its workflow and owner; NotFound else."""
    account = (
        ServiceAccount.objects.select_related("workflow__owner")
        .filter(pk=account_id, workflow__slug=workflow_slug)
        .first()
    )
    if account is None:
        raise NotFound(f"workflow {workflow_slug} has no service account {account_id}")
    return account


def service_accounts_by_workflow(*, workflow_ids: Iterable[int]) -> dict[int, list[ServiceAccount]]:
    """Each workflow's service accounts by name, active or not. One query."""
    by_workflow: dict[int, list[ServiceAccount]] = defaultdict(list)
    for account in ServiceAccount.objects.filter(workflow_id__in=list(workflow_ids)).order_by("name"):
        by_workflow[account.workflow_id].append(account)
    return dict(by_workflow)


def service_account_revoke(*, account: ServiceAccount, actor: Actor) -> ServiceAccount:
    """End the account's token now: the next request that sends it is refused with 401."""
    with transaction.atomic():
        account = ServiceAccount.objects.select_for_update().select_related("workflow").get(pk=account.pk)
        if account.revoked_at is not None:
            raise InvalidTransition(
                f"service account {account} was already revoked at {account.revoked_at:%Y-%m-%d %H:%M:%S} UTC"
            )
        account.revoked_at = timezone.now()
        account.save(update_fields=["revoked_at"])
        audit_record(
            action="token.revoked",
            actor=actor,
            workflow_slug=account.workflow.slug,
            details={"service_account": account.pk, "name": account.name, "prefix": account.token_prefix},
        )
    return account


def service_account_revoke_by_owner(*, account: ServiceAccount, user: Any) -> ServiceAccount:
    """The workflow's owner revokes one of its service accounts (from the workflows page)."""
    workflow = account.workflow
    if not owns_workflow(user=user, workflow=workflow):
        raise NotAllowed(
            f"only the owner of {workflow.slug}, {user_label(workflow.owner)}, revokes its service accounts"
        )
    return service_account_revoke(account=account, actor=Actor.user(user))


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
