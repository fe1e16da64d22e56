"""Reading the trail: filtered, keyset-paginated pages of events, and a streamed export.

Every read is of the events a viewer may see (`core.visibility.ViewerScope`): those of the workflows
in their sight, with the value of each field none of those workflows covers withheld.
"""

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from uuid import UUID

from django.contrib.auth import get_user_model
from django.db.models import Max, Q, QuerySet, Value
from django.db.models.functions import Concat

from audit.models import AuditEvent, ChainProgress
from core.visibility import ViewerScope

DECISION_ACTIONS = ("proposal.approved", "proposal.approval_recorded", "proposal.rejected")
PAGE_SIZE = 50
EXPORT_CHUNK_SIZE = 2000


@dataclass(frozen=True)
class TrailFilters:
    """What to narrow the trail to. Empty values do not narrow it."""

    record_type: str = ""
    record_id: str = ""
    change_id: UUID | None = None
    proposal_id: int | None = None
    batch_id: int | None = None
    workflow_slug: str = ""
    prompt_version: str = ""
    approver: str = ""
    actor: str = ""
    field: str = ""
    action: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) in (None, "") for f in fields(self))

    def described(self) -> dict[str, str]:
        """The filters that narrow, as text, for the trail to say what an export covered."""
        return {
            f.name: value.isoformat() if isinstance(value, datetime) else str(value)
            for f in fields(self)
            if (value := getattr(self, f.name)) not in (None, "")
        }


@dataclass(frozen=True)
class EventPage:
    """One page of events, newest first, and the keys of the pages either side of it."""

    events: list[AuditEvent]
    older_than: int | None
    newer_than: int | None


def approver_labels(text: str) -> set[str]:
    """The labels the trail may name an approver by, given their username or full name as typed: the
    text itself, and the username and full name of each person it names (letter case aside)."""
    User = get_user_model()
    full_name = Concat("first_name", Value(" "), "last_name")
    people = User.objects.annotate(full_name=full_name).filter(
        Q(**{f"{User.USERNAME_FIELD}__iexact": text}) | Q(full_name__iexact=text)
    )
    labels = {text}
    for person in people:
        labels |= {person.get_username(), person.get_full_name()} - {""}
    return labels


# Events about a record that no workflow caused, shown to whoever sees a field of its record type
# (each value they may not see withheld, as everywhere): an edit made in the system of record itself.
RECORD_EVENTS = ("record.changed_outside",)


def events_in_scope(scope: ViewerScope) -> QuerySet[AuditEvent]:
    """The events of the workflows `scope` sees, and the record events (`RECORD_EVENTS`) of the record
    types it sees; any other event that names no workflow only for everything."""
    if scope.everything:
        return AuditEvent.objects.all()
    own = Q(workflow_slug__in=sorted(scope.workflow_slugs))
    record_types = sorted(name for name, fields in scope.fields_by_record_type.items() if fields)
    if record_types:
        own |= Q(action__in=RECORD_EVENTS, record_type__in=record_types)
    return AuditEvent.objects.filter(own)


def as_seen(event: AuditEvent, scope: ViewerScope) -> AuditEvent:
    """`event` with the value of each field `scope` does not see withheld, before and after, and in
    the field-keyed maps its details carry (a conflict's base, current and proposed values). The
    event is only read, never saved again: the trail refuses updates."""
    if scope.everything:
        return event
    if event.field:
        event.old_value = scope.shown(event.record_type, event.field, event.old_value)
        event.new_value = scope.shown(event.record_type, event.field, event.new_value)
    else:
        event.old_value = scope.shown_values(event.record_type, event.old_value)
        event.new_value = scope.shown_values(event.record_type, event.new_value)
    if isinstance(event.details, dict):
        event.details = {
            key: scope.shown_values(event.record_type, value) if isinstance(value, dict) else value
            for key, value in event.details.items()
        }
    return event


def _filtered(filters: TrailFilters, scope: ViewerScope) -> QuerySet[AuditEvent]:
    events = events_in_scope(scope)
    if filters.record_type:
        events = events.filter(record_type=filters.record_type)
    if filters.record_id:
        events = events.filter(record_id=filters.record_id)
    if filters.change_id is not None:
        events = events.filter(change_id=filters.change_id)
    if filters.proposal_id is not None:
        events = events.filter(proposal_id=filters.proposal_id)
    if filters.batch_id is not None:
        events = events.filter(batch_id=filters.batch_id)
    if filters.workflow_slug:
        events = events.filter(workflow_slug=filters.workflow_slug)
    if filters.prompt_version:
        events = events.filter(prompt_version=filters.prompt_version)
    if filters.approver:
        # The approver is named on the events of what they approved, and is the actor of the decision itself.
        labels = approver_labels(filters.approver)
        events = events.filter(Q(approver_label__in=labels) | Q(action__in=DECISION_ACTIONS, actor_label__in=labels))
    if filters.actor:
        events = events.filter(actor_label=filters.actor)
    if filters.field:
        # A field is named on field-level events, or is a key of the before/after values of a whole change.
        events = events.filter(
            Q(field=filters.field) | Q(old_value__has_key=filters.field) | Q(new_value__has_key=filters.field)
        )
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.since is not None:
        events = events.filter(occurred_at__gte=filters.since)
    if filters.until is not None:
        events = events.filter(occurred_at__lt=filters.until)
    return events


def audit_event_page(
    *,
    filters: TrailFilters,
    scope: ViewerScope,
    older_than: int | None = None,
    newer_than: int | None = None,
    size: int = PAGE_SIZE,
) -> EventPage:
    """A page of the trail as `scope` sees it, newest first, keyed by event id: one query, whatever
    the trail's length.

    `older_than` gives the page after an event id (going back in time), `newer_than` the page before it.
    """
    events = _filtered(filters, scope)
    if newer_than is not None:
        rows = [as_seen(event, scope) for event in events.filter(id__gt=newer_than).order_by("id")[: size + 1]]
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return EventPage(
            events=rows,
            older_than=rows[-1].pk if rows else None,
            newer_than=rows[0].pk if rows and more_newer else None,
        )
    if older_than is not None:
        events = events.filter(id__lt=older_than)
    rows = [as_seen(event, scope) for event in events.order_by("-id")[: size + 1]]
    more_older = len(rows) > size
    rows = rows[:size]
    return EventPage(
        events=rows,
        older_than=rows[-1].pk if rows and more_older else None,
        newer_than=rows[0].pk if rows and older_than is not None else None,
    )


def audit_event_last_id() -> int:
    """The id of the newest event. Ids are drawn while the chain is locked, so every event up to it
    has been appended for good: the events up to it are a fixed set to count and then read."""
    return AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0


def audit_event_count(*, filters: TrailFilters, scope: ViewerScope, up_to: int) -> int:
    """How many events match, of those up to event `up_to`."""
    return _filtered(filters, scope).filter(id__lte=up_to).count()


def audit_event_iter(*, filters: TrailFilters, scope: ViewerScope, up_to: int) -> Iterator[AuditEvent]:
    """Every event that matches, of those up to event `up_to`, oldest first, as `scope` sees them;
    read in chunks so memory stays flat whatever the count."""
    events = _filtered(filters, scope).filter(id__lte=up_to).order_by("id").iterator(chunk_size=EXPORT_CHUNK_SIZE)
    return (as_seen(event, scope) for event in events)


def audit_events_around(
    *, record_type: str, record_id: str, at: datetime, scope: ViewerScope, count: int = 5
) -> tuple[list[AuditEvent], list[AuditEvent]]:
    """The record's `count` events up to `at` and its `count` events after it, each list newest
    first, of those `scope` sees."""
    events = events_in_scope(scope).filter(record_id=record_id, record_type=record_type)
    before = [as_seen(e, scope) for e in events.filter(occurred_at__lte=at).order_by("-occurred_at", "-id")[:count]]
    after = [as_seen(e, scope) for e in events.filter(occurred_at__gt=at).order_by("occurred_at", "id")[:count]]
    return after[::-1], before


def audit_events_for(*, proposal_id: int | None, change_ids: list[UUID], scope: ViewerScope) -> list[AuditEvent]:
    """Every event about a proposal or any of these changes that `scope` sees, oldest first."""
    condition = Q(change_id__in=change_ids) if change_ids else Q(pk__in=[])
    if proposal_id is not None:
        condition |= Q(proposal_id=proposal_id)
    return [as_seen(event, scope) for event in events_in_scope(scope).filter(condition).order_by("id")]


def audit_chain_broken() -> AuditEvent | None:
    """The `audit.broken` event the scheduled verification appended, if it found the chain broken.
    One indexed query: asked by the health endpoint and by every page that shows the banner."""
    return AuditEvent.objects.filter(action="audit.broken").order_by("-id").first()


def audit_chain_checked_at() -> datetime | None:
    """When the scheduled verification last walked the chain (None before its first run)."""
    return ChainProgress.objects.values_list("checked_at", flat=True).first()
