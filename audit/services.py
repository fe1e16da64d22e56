"""Appending to the trail. Every other app records what happened through `audit_record`."""

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from audit.actions import is_known
from audit.alarms import chain_broken
from audit.models import ActorKind, AuditEvent, ChainProgress
from audit.selectors import (
    TrailFilters,
    audit_chain_broken,
    audit_event_count,
    audit_event_iter,
    audit_event_last_id,
)
from audit.tombstones import tombstones_verify
from core.bulk import bulk_insert
from core.errors import NotAllowed
from core.roundtrip import Rows, Statement, built_once, run_together
from core.visibility import ViewerScope

GENESIS_HASH = "0" * 64
# Any constant works; it names the lock that serialises appends to the chain on PostgreSQL.
_CHAIN_LOCK_KEY = 7_318_220_461


def user_label(user: Any) -> str:
    """How the trail and the pages name a person: their full name, else their username ("" for nobody)."""
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


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


def _is_json_native(value: Any, depth: int = 0) -> bool:
    """Whether `value` is already what JSON gives back (so a round trip would not change it)."""
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if depth > 8:
        return False
    if type(value) is dict:
        return all(type(key) is str and _is_json_native(item, depth + 1) for key, item in value.items())
    if type(value) is list:
        return all(_is_json_native(item, depth + 1) for item in value)
    return False


def _plain(value: Any) -> Any:
    """The value exactly as the JSON column will give it back."""
    if _is_json_native(value):
        return value
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
            cursor.execute("SELECT audit_chain_head(%s)", [_CHAIN_LOCK_KEY])
            return str(cursor.fetchone()[0])
    # On SQLite the IMMEDIATE transaction already holds the database's write lock.
    head = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    return head or GENESIS_HASH


_CONTENT_FIELDS = [f for f in AuditEvent._meta.concrete_fields if f.attname not in ("id", "prev_hash", "hash")]


def _chained_insert_sql() -> str:
    quote = connection.ops.quote_name
    table = AuditEvent._meta.db_table
    columns = ", ".join(quote(str(f.column)) for f in _CONTENT_FIELDS)
    values = ", ".join(["%s"] * len(_CONTENT_FIELDS))
    # Built only from the model's own table and column names; every value is a parameter.
    return (
        "WITH head AS MATERIALIZED (SELECT audit_chain_head(%s) AS prev) "  # noqa: S608
        f"INSERT INTO {quote(table)} (id, {columns}, prev_hash, hash) VALUES ("
        f"(SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM head), {values}, "
        "(SELECT prev FROM head), "
        "(SELECT encode(sha256(convert_to(prev, 'UTF8') || %s::bytea), 'hex') FROM head)) "
        "RETURNING id, prev_hash, hash"
    )


def chained_insert(event: AuditEvent) -> "ChainedInsert":
    """The PostgreSQL statement that locks the chain, reads its head, links and inserts `event`.

    `audit_chain_head` takes the lock and then reads the head with a fresh snapshot, so the head
    is the one the previous appender committed. The id is drawn only once the lock is held, so ids
    follow the chain. The database computes the link exactly as `event_hash` does; `finish` checks
    it before the caller's transaction can commit. For sending along with other statements (see
    `core.roundtrip`), as the last of them: the chain stays locked until the transaction ends.
    """
    sql = built_once("audit: chained insert", _chained_insert_sql)
    content = canonical_content(event)
    params = [
        _CHAIN_LOCK_KEY,
        *(f.get_db_prep_save(getattr(event, f.attname), connection) for f in _CONTENT_FIELDS),
        content,
    ]
    return ChainedInsert(Statement(sql, params, prepared=True), event, content)


@dataclass(frozen=True)
class ChainedInsert:
    statement: Statement
    event: AuditEvent
    content: bytes  # the canonical content sent, as `canonical_content` gives it

    def finish(self, rows: Rows) -> AuditEvent:
        """Take the id and links the database gave the event, and check the link."""
        event = self.event
        event.pk, event.prev_hash, stored_hash = rows[0]
        event.hash = hashlib.sha256(event.prev_hash.encode() + self.content).hexdigest()
        if event.hash != stored_hash:
            raise RuntimeError(
                f"audit event #{event.pk}: the database linked it with a different hash; nothing is kept"
            )
        event._state.adding = False
        event._state.db = connection.alias
        return event


@dataclass(frozen=True)
class AuditAppend:
    """Events to append along with other statements, in one round trip where the database allows.

    Send `statements` last among them (on PostgreSQL they take the chain's lock, held until the
    transaction ends), then hand their answers to `finish`. Elsewhere there are none to send, and
    `finish` appends the events itself.
    """

    events: list[AuditEvent]
    inserts: list[ChainedInsert]

    @property
    def statements(self) -> list[Statement]:
        return [insert.statement for insert in self.inserts]

    def finish(self, answers: Sequence[Rows]) -> list[AuditEvent]:
        if not self.inserts:
            _append(self.events)
            return self.events
        return [insert.finish(rows) for insert, rows in zip(self.inserts, answers, strict=True)]


def audit_append_along(events: Iterable[EventData]) -> AuditAppend:
    """Prepare `events` for appending with the caller's other statements (see `AuditAppend`)."""
    built = [_build(data) for data in events]
    return AuditAppend(built, [chained_insert(event) for event in built] if connection.vendor == "postgresql" else [])


def _append(built: list[AuditEvent]) -> None:
    """Lock the chain, link `built` to its head and insert them, inside the caller's transaction."""
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql" and len(built) == 1:
            insert = chained_insert(built[0])
            insert.finish(run_together([insert.statement])[0])
            return
        previous = _lock_chain_and_get_head()
        for event in built:
            event.prev_hash = previous
            event.hash = event_hash(event)
            previous = event.hash
        if len(built) == 1:
            built[0].save(force_insert=True)
        else:
            bulk_insert(AuditEvent, built)


def audit_record_many(events: Iterable[EventData]) -> list[AuditEvent]:
    """Append events to the chain, in order, inside the caller's transaction.

    No savepoint: an event that cannot be appended dooms the transaction it belongs to, so the
    action it records cannot commit without it (and a hot path saves two round trips).
    """
    built = [_build(data) for data in events]
    if built:
        _append(built)
    return built


def audit_record(**kwargs: Any) -> AuditEvent:
    """Append one event. Takes the fields of `EventData` as keywords."""
    return audit_record_many([EventData(**kwargs)])[0]


def lockout_record(*, username: str, ip_address: str) -> AuditEvent | None:
    """Record that sign-ins for `username` from `ip_address` are refused for a while; once per
    lockout window, however many attempts the locked-out client goes on making."""
    window_start = timezone.now() - settings.AXES_COOLOFF_TIME
    recent = AuditEvent.objects.filter(action="login.locked_out", occurred_at__gte=window_start)
    if recent.filter(details__username=username, details__ip=ip_address).exists():
        return None
    return audit_record(
        action="login.locked_out",
        actor=Actor(kind=ActorKind.SYSTEM, label=username or "unknown"),
        reason="too many failed sign-ins; further attempts are refused until the lockout ends",
        details={"username": username, "ip": ip_address},
    )


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    problem: str


def _walk(events: Iterable[AuditEvent], previous: str) -> Iterator[AuditEvent | ChainBreak]:
    """Each event of `events` (in id order) that links to the one before and matches its hash, then
    the first break, if any, after which it stops."""
    for event in events:
        if event.prev_hash != previous:
            yield ChainBreak(event.pk, "its link to the event before it does not match")
            return
        if event_hash(event) != event.hash:
            yield ChainBreak(event.pk, "its content does not match its hash (it was altered)")
            return
        if event.action == "artifacts.purged" and (problem := tombstones_verify(event)) is not None:
            yield ChainBreak(event.pk, problem)
            return
        previous = event.hash
        yield event


def audit_verify_chain(*, chunk_size: int = 5000) -> tuple[int, ChainBreak | None]:
    """Walk the chain from the start. Returns how many events were checked and the first break."""
    checked = 0
    for item in _walk(AuditEvent.objects.order_by("id").iterator(chunk_size=chunk_size), GENESIS_HASH):
        if isinstance(item, ChainBreak):
            return checked, item
        checked += 1
    return checked, None


@dataclass(frozen=True)
class ChainCheck:
    checked: int  # events walked this time
    verified_through: int  # the last event found sound
    broken: AuditEvent | None  # the `audit.broken` event, once the chain is found broken


def audit_verify_incremental(*, chunk_size: int = 5000) -> ChainCheck:
    """Walk the chain from the last event found sound onward (beat runs this on a schedule).

    That event must still hold the hash it held then: an owner who edits an earlier event and
    recomputes the chain changes it. A break appends one `audit.broken` event naming the event and
    the problem; once broken, later runs walk nothing and append nothing more (the chain cannot be
    mended in place: the break stays on the trail, visible on the health endpoint and the banner).
    """
    already = audit_chain_broken()
    progress, _ = ChainProgress.objects.get_or_create(pk=1)
    if already is not None:
        return ChainCheck(0, progress.verified_through_id, already)
    previous = GENESIS_HASH
    found: ChainBreak | None = None
    if progress.verified_through_id:
        still = AuditEvent.objects.filter(pk=progress.verified_through_id).values_list("hash", flat=True).first()
        if still != progress.verified_through_hash:
            found = ChainBreak(
                progress.verified_through_id,
                "it no longer holds the hash it held when it was verified (it was removed, or the chain rewritten)",
            )
        previous = progress.verified_through_hash
    checked = 0
    if found is None:
        events = AuditEvent.objects.filter(id__gt=progress.verified_through_id).order_by("id")
        for item in _walk(events.iterator(chunk_size=chunk_size), previous):
            if isinstance(item, ChainBreak):
                found = item
                break
            progress.verified_through_id, progress.verified_through_hash = item.pk, item.hash
            checked += 1
    progress.checked_at = timezone.now()
    progress.save()
    if found is None:
        return ChainCheck(checked, progress.verified_through_id, None)
    with transaction.atomic():
        broken = audit_record(
            action="audit.broken",
            actor=Actor.system("scheduled chain verification"),
            reason=f"audit chain broken at event #{found.event_id}: {found.problem}",
            details={
                "event_id": found.event_id,
                "problem": found.problem,
                "verified_through": progress.verified_through_id,
            },
        )
        chain_broken.send(sender=AuditEvent, event=broken)
    return ChainCheck(checked, progress.verified_through_id, broken)


EXPORT_REFUSED = "exporting the trail needs the export_trail permission, given through a group"


@dataclass(frozen=True)
class TrailExport:
    """An export under way: how many rows its file holds, and the events to write, oldest first."""

    rows: int
    events: Iterator[AuditEvent]


def trail_export(*, filters: TrailFilters, scope: ViewerScope, actor: Actor, file_format: str) -> TrailExport:
    """Open an export of the trail as `scope` sees it, and append `trail.exported` naming who, the
    filter and the number of rows. Raises NotAllowed without the `export_trail` permission.

    The rows are counted before the first is sent, and the event is appended then: a download cut
    short ends without the server hearing of it, so the trail records what the file holds rather than
    what arrived. Count and file agree because both stop at the newest event at this moment; ids are
    drawn under the chain's lock and the trail is append-only, so the events up to it never change.
    """
    if not scope.may_export:
        raise NotAllowed(EXPORT_REFUSED)
    up_to = audit_event_last_id()
    rows = audit_event_count(filters=filters, scope=scope, up_to=up_to)
    audit_record(
        action="trail.exported",
        actor=actor,
        details={
            "format": file_format,
            "filter": filters.described(),
            "rows": rows,
            "up_to_event": up_to,
            "workflows": "every workflow" if scope.everything else sorted(scope.workflow_slugs),
        },
    )
    return TrailExport(rows=rows, events=audit_event_iter(filters=filters, scope=scope, up_to=up_to))
