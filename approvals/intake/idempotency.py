"""Idempotency keys: a keyed POST is processed once; a replay with the same body gets the first answer.

A key is claimed by a row written and committed before the request is processed, so a second request
with the same key, from anywhere, sees it at once (the unique constraint settles a race). The answer
is stored in the same transaction as the work it describes: either both are written or neither is.
A refusal stores nothing and releases the key, so the same request may be sent again once fixed.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.models import IdempotencyKey, ServiceAccount
from core.errors import InvalidTransition, ValidationFailed

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# A claim left unanswered this long belongs to a process that died: nothing was written for it.
ABANDONED_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class Replay:
    """The first answer to a keyed request, to be given again: its status and its exact JSON text."""

    status_code: int
    body: str


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    """What "the same request" means: method, path and the body's JSON content (key order and spacing aside)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)
    # A batch answers an item holding a lone surrogate with its own 422, so such a body is still
    # keyed; "surrogatepass" gives it bytes to hash and leaves every other body's hash as it was.
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode("utf-8", "surrogatepass")).hexdigest()


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise ValidationFailed([(HEADER, f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")])


def idempotency_begin(*, account: ServiceAccount, key: str, fingerprint: str) -> IdempotencyKey | Replay:
    """Claim `key` for this request, in a transaction of its own.

    Returns the claim, or the first answer to replay. Raises ValidationFailed (422) when the key was
    used with a different request, InvalidTransition (409) while the first request is still in flight.
    """
    check_key(key)
    for _ in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    service_account=account, key=key, request_hash=fingerprint, created_at=now
                )
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(service_account=account, key=key).first()
        if existing is None:
            continue  # released in the meantime: claim it again
        if existing.request_hash != fingerprint:
            raise ValidationFailed(
                [(HEADER, "was already used for a different request; send a new key for a new request")]
            )
        if existing.completed_at is not None and existing.status_code is not None:
            return Replay(status_code=existing.status_code, body=str(existing.response_body))
        if existing.created_at < now - ABANDONED_AFTER:
            taken = IdempotencyKey.objects.filter(
                pk=existing.pk, completed_at__isnull=True, created_at=existing.created_at
            ).update(created_at=now)
            if taken:
                existing.created_at = now
                return existing
            continue
        raise InvalidTransition(
            "the first request with this key is still being processed; send it again once that one has answered",
            field=HEADER,
        )
    raise InvalidTransition("this key is being claimed by another request; send it again", field=HEADER)


def idempotency_complete(*, claim: IdempotencyKey, status_code: int, body: str) -> None:
    """Store the answer (its JSON text, kept verbatim), inside the transaction that did the work."""
    stored = IdempotencyKey.objects.filter(pk=claim.pk, completed_at__isnull=True, created_at=claim.created_at).update(
        status_code=status_code, response_body=body, completed_at=timezone.now()
    )
    if not stored:
        raise InvalidTransition("this key was taken over by a later request; its answer stands", field=HEADER)


def idempotency_release(*, claim: IdempotencyKey) -> None:
    """Give the key up after a refusal, so the request can be sent again."""
    IdempotencyKey.objects.filter(pk=claim.pk, completed_at__isnull=True, created_at=claim.created_at).delete()


def idempotency_keys_purge(*, now: datetime | None = None) -> int:
    """Delete keys older than the configured time to keep them (at least 24 hours). Returns how many."""
    hours = max(24, int(settings.COUNTERSIGN["IDEMPOTENCY_KEY_TTL_HOURS"]))
    cutoff = (now or timezone.now()) - timedelta(hours=hours)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
