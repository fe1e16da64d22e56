"""Appending to the trail. Every other app records what happened through `audit_record`."""

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from audit.actions import is_known
from audit.models import ActorKind, AuditEvent

GENESIS_HASH = "0" * 64
# Any constant works; it names the lock that serialises appends to the chain on PostgreSQL.
_CHAIN_LOCK_KEY = 7_318_220_461


@dataclass(frozen=True)
class Actor:
    """Who did something: a person, a pipeline's service account, a worker or the system."""

    kind: str
    id: str = ""
    label: str = ""

    @classmethod
    def user(cls, user: Any) -> "Actor":
        return cls(kind=ActorKind.USER, id=str(user.pk), label=user.get_username())

    @classmethod
    def service_account(cls, account: Any) -> "Actor":
        return cls(kind=ActorKind.SERVICE_ACCOUNT, id=str(account.pk), label=str(account))

    @classmethod
    def worker(cls, name: str) -> "Actor":
        return cls(kind=ActorKind.WORKER, id=name, label=name)

    @classmethod
    def system(cls, label: str = "countersign") -> "Actor":
        return cls(kind=ActorKind.SYSTEM, id="", label=label)


@dataclass
class EventData:
    """The content of one event, before it is chained."""

    action: str
    actor: Actor
    record_type: str = ""
    record_id: str = ""
    field: str = ""
    old_value: Any = None
    new_value: Any = None
    proposal_id: int | None = None
    change_id: UUID | str | None = None
    batch_id: int | None = None
    workflow_slug: str = ""
    model_name: str = ""
    model_version: str = ""
    prompt_version: str = ""
    approver_label: str = ""
    decided_at: datetime | None = None
    reason: str = ""
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    occurred_at: datetime | None = None


class UnknownAuditAction(ValueError):
    pass


def _plain(value: Any) -> Any:
    """The value exactly as the JSON column will give it back."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=(moment.microsecond // 1000) * 1000)


def canonical_content(event: AuditEvent) -> bytes:
    """The bytes an event's hash covers: every field but the hashes, in a fixed form."""
    content = {
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "actor_kind": event.actor_kind,
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "record_type": event.record_type,
        "record_id": event.record_id,
        "field": event.field,
        "old_value": event.old_value,
        "new_value": event.new_value,
        "proposal_id": event.proposal_id,
        "change_id": str(event.change_id) if event.change_id else None,
        "batch_id": event.batch_id,
        "workflow_slug": event.workflow_slug,
        "model_name": event.model_name,
        "model_version": event.model_version,
        "prompt_version": event.prompt_version,
        "approver_label": event.approver_label,
        "decided_at": event.decided_at.astimezone(UTC).isoformat(timespec="milliseconds") if event.decided_at else None,
        "reason": event.reason,
        "details": event.details,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder).encode()


def event_hash(event: AuditEvent) -> str:
    return hashlib.sha256(event.prev_hash.encode() + canonical_content(event)).hexdigest()


def _build(data: EventData) -> AuditEvent:
    if not is_known(data.action):
        raise UnknownAuditAction(f"'{data.action}' is not a registered audit action")
    return AuditEvent(
        occurred_at=_millis(data.occurred_at or timezone.now()),
        actor_kind=data.actor.kind,
        actor_id=data.actor.id,
        actor_label=data.actor.label,
        action=data.action,
        record_type=data.record_type,
        record_id=data.record_id,
        field=data.field,
        old_value=_plain(data.old_value),
        new_value=_plain(data.new_value),
        proposal_id=data.proposal_id,
        change_id=data.change_id,
        batch_id=data.batch_id,
        workflow_slug=data.workflow_slug,
        model_name=data.model_name,
        model_version=data.model_version,
        prompt_version=data.prompt_version,
        approver_label=data.approver_label,
        decided_at=_millis(data.decided_at) if data.decided_at else None,
        reason=data.reason,
        details=_plain(data.details),
    )


def _lock_chain_and_get_head() -> str:
    """Serialise appenders until the transaction ends, then read the chain's head."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
    # On SQLite the IMMEDIATE transaction already holds the database's write lock.
    head = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    return head or GENESIS_HASH


def audit_record_many(events: Iterable[EventData]) -> list[AuditEvent]:
    """Append events to the chain, in order, inside the caller's transaction.

    No savepoint: an event that cannot be appended dooms the transaction it belongs to, so the
    action it records cannot commit without it (and a hot path saves two round trips).
    """
    built = [_build(data) for data in events]
    if not built:
        return []
    with transaction.atomic(savepoint=False):
        previous = _lock_chain_and_get_head()
        for event in built:
            event.prev_hash = previous
            event.hash = event_hash(event)
            previous = event.hash
        if len(built) == 1:
            built[0].save(force_insert=True)
        else:
            AuditEvent.objects.bulk_create(built, batch_size=1000)
    return built


def audit_record(**kwargs: Any) -> AuditEvent:
    """Append one event. Takes the fields of `EventData` as keywords."""
    return audit_record_many([EventData(**kwargs)])[0]


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    problem: str


def audit_verify_chain(*, chunk_size: int = 5000) -> tuple[int, ChainBreak | None]:
    """Walk the chain from the start. Returns how many events were checked and the first break."""
    previous = GENESIS_HASH
    checked = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=chunk_size):
        if event.prev_hash != previous:
            return checked, ChainBreak(event.pk, "its link to the event before it does not match")
        if event_hash(event) != event.hash:
            return checked, ChainBreak(event.pk, "its content does not match its hash (it was altered)")
        previous = event.hash
        checked += 1
    return checked, None
