"""Reads about records: finding one by the id staff use, its state at any moment, and its timeline.

A person reads a record as their `ViewerScope` lets them: the events of the workflows they see, and
the values of the fields those workflows cover; every other value is withheld.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import QuerySet

from audit.models import AuditEvent
from audit.reading import OutsideWindow, outside_window
from audit.selectors import EventPage, TrailFilters, audit_event_page, audit_events_around, events_in_scope
from core.visibility import WITHHELD, ViewerScope
from records.catalogue import RECORD_TYPES, Kind, RecordType
from records.models import Change, ChangeAction, StoreBinding
from records.store import RecordNotFound, RecordRef, RecordState, get_store
from records.store.connectors import ACTIONS
from records.store.protocol import StoreUnavailable
from records.store.registry import Binding, binding_build

VISIBILITY = ("archived", "deleted")


def record_type_for_id(record_id: str) -> RecordType | None:
    """The record type whose ids look like `record_id` (by prefix, ignoring case), or None."""
    for record_type in RECORD_TYPES.values():
        if record_id.upper().startswith(record_type.id_prefix) and len(record_id) > len(record_type.id_prefix):
            return record_type
    return None


def record_ref_for_id(record_id: str) -> RecordRef | None:
    """A reference for an id as staff type it: `cus-10432 ` is CUS-10432. None if no type has such ids."""
    record_id = record_id.strip()
    record_type = record_type_for_id(record_id)
    if record_type is None:
        return None
    prefix = record_type.id_prefix
    return RecordRef(record_type.name, prefix + record_id[len(prefix) :])


@dataclass
class StateAt:
    """A record as it was at one moment, rebuilt from the record as it is now and its Changes since."""

    ref: RecordRef
    at: datetime
    values: dict[str, Any]
    version: int
    archived: bool
    deleted: bool
    changes_since: list[Change] = field(default_factory=list)
    last_change: Change | None = None
    outside_since: list[AuditEvent] = field(default_factory=list)

    @property
    def outside_unsure(self) -> list[OutsideWindow]:
        """Edits made outside Countersign in a window that holds this moment: whether they had
        happened yet is not known, so the values they changed may be either."""
        windows = (outside_window(event) for event in self.outside_since)
        return [window for window in windows if window is not None and window.seen_at < self.at]

    @property
    def hidden(self) -> bool:
        return self.archived or self.deleted


def _visibility_before(change: Change, name: str) -> bool | None:
    """Whether the record was archived (or deleted) just before `change`, if the change says or implies it.

    A Change that touches visibility may hold it in `before` as `archived`/`deleted` (bool) or
    `archived_at`/`deleted_at` (a time or null). Without that, the action implies it: before an
    archive the record was not archived, and before the undo of an archive it was.
    """
    before = change.before if isinstance(change.before, dict) else {}
    if name in before:
        return bool(before[name])
    if f"{name}_at" in before:
        return before[f"{name}_at"] is not None
    action = {"archived": ChangeAction.ARCHIVE, "deleted": ChangeAction.DELETE}[name]
    if change.action == action:
        return False
    if change.action == ChangeAction.REVERT and change.reverts is not None and change.reverts.action == action:
        return True
    return None


def _values_before(change: Change) -> dict[str, Any]:
    """The field values a Change replaced: its `before`, or the `values` of a full snapshot kept there."""
    before = change.before if isinstance(change.before, dict) else {}
    nested = before.get("values")
    return nested if isinstance(nested, dict) else before


def _all_fields(ref: RecordRef) -> set[str]:
    return set(RECORD_TYPES[ref.record_type].field_names)


def _changes_of(ref: RecordRef) -> QuerySet[Change]:
    return Change.objects.filter(record_type=ref.record_type, record_id=ref.record_id)


def _moves_since(ref: RecordRef, at: datetime) -> list[tuple[int, dict[str, Any]]]:
    """Moves of `ref` by merges after `at`: (version before the move, the value it replaced).

    A merge's Change belongs to the duplicate; the rows it moved are listed in its merge_payload.
    """
    if not any(spec.kind == Kind.REF for spec in RECORD_TYPES[ref.record_type].fields):
        return []
    steps = []
    merges = Change.objects.filter(applied_at__gt=at, merge_payload__isnull=False).only("merge_payload")
    for change in merges:
        for move in (change.merge_payload or {}).get("moved", []):
            if move["record_type"] == ref.record_type and move["record_id"] == ref.record_id:
                steps.append((move["version_before"], {move["field"]: move["from"]}))
    return steps


def _outside_since(ref: RecordRef, at: datetime) -> list[AuditEvent]:
    """Edits made outside Countersign that it found after `at`, or whose window holds `at`, newest
    first. None for a record in the built-in store, which no one edits but through a Change."""
    if get_store(ref.record_type).in_default_database:
        return []
    found = AuditEvent.objects.filter(
        action="record.changed_outside", record_type=ref.record_type, record_id=ref.record_id, occurred_at__gt=at
    )
    return list(found.order_by("-id"))


@dataclass(frozen=True)
class _Step:
    """One write to undo, walking back from now: the version it started from, the values it replaced,
    the visibility it changed, and its Change (None for a merge's move or an edit made outside)."""

    version_before: int
    moment: datetime
    replaced: dict[str, Any]
    change: Change | None = None
    hidden_before: dict[str, bool] = field(default_factory=dict)


def _outside_step(event: AuditEvent, window: OutsideWindow) -> _Step:
    before = event.old_value if isinstance(event.old_value, dict) else {}
    values = {name: value for name, value in before.items() if name not in VISIBILITY}
    hidden = {name: bool(before[name]) for name in VISIBILITY if name in before}
    return _Step(window.version_seen, event.occurred_at, values, hidden_before=hidden)


def record_state_at(*, ref: RecordRef, at: datetime, current: RecordState | None = None) -> StateAt:
    """The record exactly as it was at `at`: its values, version and visibility.

    Starts from the record as the store holds it now (`current`, if the caller has just fetched
    it) and walks back through every Change applied after `at`, newest first, putting back what
    each one replaced; for a store outside the database, edits made there and found after `at`
    are walked back too (an edit whose window holds `at` is listed in `outside_unsure`: when
    exactly it happened is not known). A Change applied exactly at `at` counts as done. Three
    queries (two given `current`), and one more for a store outside the database, whatever the
    record's history. Raises RecordNotFound.
    """
    now = (
        current
        if current is not None and current.values.keys() >= _all_fields(ref)
        else get_store(ref.record_type).fetch(ref)
    )
    values: dict[str, Any] = dict(now.values)
    visible = {"archived": now.archived, "deleted": now.deleted}
    version: int = now.version
    since = list(
        _changes_of(ref).filter(applied_at__gt=at).select_related("reverts").order_by("-applied_at", "-version_after")
    )
    outside = _outside_since(ref, at)
    steps = [_Step(change.version_before, change.applied_at, _values_before(change), change) for change in since]
    steps.extend(_Step(version_before, at, replaced) for version_before, replaced in _moves_since(ref, at))
    steps.extend(_outside_step(event, window) for event in outside if (window := outside_window(event)) is not None)
    for step in sorted(steps, key=lambda step: (step.version_before, step.moment), reverse=True):
        for name, value in step.replaced.items():
            if name in values:
                values[name] = value
        visible.update(step.hidden_before)
        if step.change is not None:
            for name in VISIBILITY:
                hidden = _visibility_before(step.change, name)
                if hidden is not None:
                    visible[name] = hidden
        version = step.version_before
    last_change = _changes_of(ref).filter(applied_at__lte=at).order_by("-applied_at", "-version_after").first()
    return StateAt(
        ref=ref,
        at=at,
        values=values,
        version=version,
        archived=visible["archived"],
        deleted=visible["deleted"],
        changes_since=since,
        last_change=last_change,
        outside_since=outside,
    )


@dataclass(frozen=True)
class FieldRow:
    name: str
    label: str
    now: Any
    then: Any = None
    differs: bool = False


@dataclass
class Timeline:
    """A record's page of events, newest first, and when asked, its state at a moment and the events
    around it, as `scope` sees them."""

    ref: RecordRef
    current: RecordState | None
    page: EventPage
    scope: ViewerScope
    state_at: StateAt | None = None
    after_moment: list[AuditEvent] = field(default_factory=list)
    before_moment: list[AuditEvent] = field(default_factory=list)

    @property
    def title(self) -> str:
        """What the record is called (a customer's name), unless its field is withheld."""
        if self.current is None:
            return ""
        return self.scope.shown(
            self.ref.record_type, RECORD_TYPES[self.ref.record_type].title_field, self.current.title
        )

    @property
    def field_rows(self) -> list[FieldRow]:
        """Each field of the record, its value now and, with a state asked for, its value then; a field
        the viewer may not see is withheld, and so is whether it changed."""
        if self.current is None:
            return []
        rows = []
        for spec in RECORD_TYPES[self.ref.record_type].fields:
            if not self.scope.sees_field(self.ref.record_type, spec.name):
                then = None if self.state_at is None else WITHHELD
                rows.append(FieldRow(spec.name, spec.label, WITHHELD, then))
                continue
            now = self.current.values.get(spec.name)
            if self.state_at is None:
                rows.append(FieldRow(spec.name, spec.label, now))
            else:
                then = self.state_at.values.get(spec.name)
                rows.append(FieldRow(spec.name, spec.label, now, then, then != now))
        return rows


def record_in_scope(*, ref: RecordRef, scope: ViewerScope) -> bool:
    """Whether `scope` reaches the record: a workflow it sees covers a field of its type, or did
    something to it. One query at most."""
    if scope.sees_record_type(ref.record_type):
        return True
    return events_in_scope(scope).filter(record_id=ref.record_id, record_type=ref.record_type).exists()


def record_timeline(
    *,
    ref: RecordRef,
    filters: TrailFilters,
    scope: ViewerScope,
    older_than: int | None = None,
    newer_than: int | None = None,
    at: datetime | None = None,
) -> Timeline:
    """Everything that happened to a record, as `scope` sees it. A fixed number of queries, whatever
    its history.

    `current` is the record as the store holds it now, or None if the store no longer has it (its
    events still show). Raises RecordNotFound when the store never had it and the trail never saw
    it, and when it is out of the viewer's scope, so that a page says nothing of what exists.
    """
    if not record_in_scope(ref=ref, scope=scope):
        raise RecordNotFound(ref)
    store = get_store(ref.record_type)
    try:
        # Read before the events: a store outside the database appends an edit made there as it reads.
        current: RecordState | None = store.fetch(ref)
    except RecordNotFound:
        current = None
    narrowed = replace(filters, record_type=ref.record_type, record_id=ref.record_id)
    page = audit_event_page(filters=narrowed, scope=scope, older_than=older_than, newer_than=newer_than)
    if current is None and not page.events and filters.is_empty():
        raise RecordNotFound(ref)
    timeline = Timeline(ref=ref, current=current, page=page, scope=scope)
    if at is not None and current is not None:
        timeline.state_at = record_state_at(ref=ref, at=at, current=current)
        timeline.after_moment, timeline.before_moment = audit_events_around(
            record_type=ref.record_type, record_id=ref.record_id, at=at, scope=scope
        )
    return timeline


def record_is_known(*, ref: RecordRef, scope: ViewerScope) -> bool:
    """Whether the store holds the record or the trail has seen it, and `scope` reaches it."""
    if not record_in_scope(ref=ref, scope=scope):
        return False
    held = get_store(ref.record_type).fetch_many(ref.record_type, [ref.record_id], fields=[])
    return bool(held) or events_in_scope(scope).filter(record_id=ref.record_id).exists()


def change_list_recent(*, scope: ViewerScope, limit: int = 20) -> list[Change]:
    """The latest Changes to any record by the workflows `scope` sees, newest first: one query."""
    changes = Change.objects.all()
    if not scope.everything:
        changes = changes.filter(workflow_slug__in=sorted(scope.workflow_slugs))
    return list(changes.order_by("-applied_at")[:limit])


def changes_undone(*, change_ids: Iterable[UUID]) -> dict[UUID, UUID]:
    """For each of these changes that is undone now, the revert that undid it.

    A change is undone while one of its reverts stands; a revert that was itself undone no longer
    counts (undoing an undo puts the change back). One query per level of undo-of-undo.
    """
    ids = list(dict.fromkeys(change_ids))
    reverts_of: dict[UUID, list[UUID]] = {}
    frontier = ids
    while frontier:
        found: list[UUID] = []
        for start in range(0, len(frontier), 500):
            rows = Change.objects.filter(
                action=ChangeAction.REVERT, reverts_id__in=frontier[start : start + 500]
            ).values_list("id", "reverts_id")
            for revert_id, target in rows.order_by("applied_at"):
                reverts_of.setdefault(target, []).append(revert_id)
                found.append(revert_id)
        frontier = found
    standing: dict[UUID, UUID | None] = {}

    def standing_revert(change_id: UUID) -> UUID | None:
        if change_id not in standing:
            standing[change_id] = next((r for r in reverts_of.get(change_id, []) if standing_revert(r) is None), None)
        return standing[change_id]

    result = {}
    for change_id in ids:
        revert = standing_revert(change_id)
        if revert is not None:
            result[change_id] = revert
    return result


# Record stores -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreSummary:
    """A record type's store as a page shows it, with the last `check_stores` result."""

    record_type: str
    connector: str  # "builtin" when the record type has no binding
    label: str
    checked_at: datetime | None = None
    reachable: bool | None = None
    check_message: str = ""


def _store_label(connector: str, settings: dict[str, Any]) -> str:
    where = settings.get("table") or settings.get("url") or ""
    return f"{connector} ({where})" if where else connector


def store_summaries() -> dict[str, StoreSummary]:
    """Every record type's store, by record type: one query."""
    summaries = {name: StoreSummary(record_type=name, connector="builtin", label="built-in") for name in RECORD_TYPES}
    for binding in StoreBinding.objects.all():
        summaries[binding.record_type] = StoreSummary(
            record_type=binding.record_type,
            connector=binding.connector,
            label=_store_label(binding.connector, binding.settings),
            checked_at=binding.checked_at,
            reachable=binding.reachable,
            check_message=binding.check_message,
        )
    return summaries


@dataclass(frozen=True)
class StoreTerms:
    """What a record type's store offers the workflows on it: the fields it maps (None: every
    catalogue field) and the actions it can carry out as configured."""

    record_type: str
    label: str
    fields: frozenset[str] | None
    actions: frozenset[str]
    problem: str = ""  # why the store could not be built here, when it could not


def store_terms(*, bindings: Iterable[Binding] | None = None) -> dict[str, StoreTerms]:
    """Every record type's store terms, by record type: from the bindings in the database, or from
    `bindings` (a stores file about to be loaded; a record type it leaves out is on the built-in store)."""
    if bindings is None:
        bindings = [
            Binding(b.record_type, b.connector, b.settings, b.fields, b.side_effects, b.digest)
            for b in StoreBinding.objects.all()
        ]
    terms = {
        name: StoreTerms(record_type=name, label="built-in", fields=None, actions=frozenset(ACTIONS))
        for name in RECORD_TYPES
    }
    for binding in bindings:
        label, fields = _store_label(binding.connector, binding.settings), frozenset(binding.fields)
        try:
            store = binding_build(binding)
        except StoreUnavailable as error:
            terms[binding.record_type] = StoreTerms(binding.record_type, label, fields, frozenset(), error.reason)
            continue
        actions = frozenset(action for action in ACTIONS if store.supports(action))
        terms[binding.record_type] = StoreTerms(binding.record_type, label, fields, actions)
    return terms
