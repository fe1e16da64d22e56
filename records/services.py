"""Writes to the record store: importing new records, and the Changes that every later write goes through."""

import csv
import dataclasses
import io
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from audit.services import Actor, EventData, audit_append_along, audit_record, audit_record_many
from core.bulk import insert_one, insert_one_statement, inserted
from core.errors import InvalidTransition, NotFound, ValidationFailed
from core.roundtrip import Statement, run_together
from records.catalogue import RECORD_TYPES, Kind, clean_value
from records.models import Change, ChangeAction, Customer
from records.selectors import changes_undone
from records.store import MODELS, DjangoRecordStore, RecordNotFound, RecordRef, RecordState, get_store

REQUIRED_FIELDS = {
    "customer": ["full_name"],
    "order": ["customer", "order_number", "amount"],
    "ticket": ["customer", "subject"],
}


@dataclass(frozen=True)
class ImportResult:
    record_type: str
    created: int


def records_import_csv(*, record_type: str, lines: Iterable[str], source: str, actor: Actor) -> ImportResult:
    """Load new records from CSV text. The whole file is checked first; any error imports nothing.

    Every problem is reported as (`row N, field`, reason). Existing record ids are refused:
    changing a record that exists goes through a Change, never through an import.
    """
    if record_type not in RECORD_TYPES:
        raise ValidationFailed(
            [("record_type", f"unknown record type '{record_type}'; use one of {', '.join(RECORD_TYPES)}")]
        )
    spec = RECORD_TYPES[record_type]
    reader = csv.reader(lines)
    header = next(reader, None)
    if not header or header[0].strip() != "record_id":
        raise ValidationFailed([("row 1", "the header must start with record_id")])
    columns = [name.strip() for name in header[1:]]
    problems: list[tuple[str, str]] = []
    for name in columns:
        if not spec.has_field(name):
            problems.append(
                ("row 1, " + name, f"unknown field for {record_type}; known fields: {', '.join(spec.field_names)}")
            )
    for name in REQUIRED_FIELDS[record_type]:
        if name not in columns:
            problems.append(("row 1, " + name, "required column is missing"))
    if len(set(columns)) != len(columns):
        problems.append(("row 1", "a column is named twice"))
    if problems:
        raise ValidationFailed(problems)

    rows: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    customer_refs: set[str] = set()
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns) + 1:
            problems.append((f"row {number}", f"has {len(row)} cells, the header has {len(columns) + 1}"))
            continue
        record_id = row[0].strip()
        if not record_id.startswith(spec.id_prefix) or len(record_id) > 64 or len(record_id) <= len(spec.id_prefix):
            problems.append((f"row {number}, record_id", f"'{record_id[:40]}' must look like {spec.id_prefix}123"))
        elif record_id in seen:
            problems.append((f"row {number}, record_id", f"{record_id} appears twice in the file"))
        seen.add(record_id)
        values: dict[str, Any] = {}
        for name, cell in zip(columns, row[1:], strict=True):
            field = spec.field(name)
            if cell == "":
                if name in REQUIRED_FIELDS[record_type]:
                    problems.append((f"row {number}, {name}", "is required"))
                continue
            try:
                values[name] = clean_value(field, cell, from_text=True)
            except ValueError as error:
                problems.append((f"row {number}, {name}", str(error)))
                continue
            if field.kind == Kind.REF:
                customer_refs.add(values[name])
        rows.append((record_id, values))

    model = MODELS[record_type]
    existing = set(model.objects.filter(record_id__in=seen).values_list("record_id", flat=True))
    for record_id in sorted(existing):
        problems.append(("record_id", f"{record_id} already exists; change it through a proposal, not an import"))
    customers = {c.record_id: c for c in Customer.objects.filter(record_id__in=customer_refs)}
    for number, (_, values) in enumerate(rows, start=2):
        for name, value in values.items():
            if spec.field(name).kind == Kind.REF and value not in customers:
                problems.append((f"row {number}, {name}", f"no customer '{value}'"))
    if problems:
        raise ValidationFailed(problems[:50], extra={"total_problems": len(problems)})

    objects: list[Any] = []
    for record_id, values in rows:
        attributes: dict[str, Any] = {}
        for name, value in values.items():
            kind = spec.field(name).kind
            if kind == Kind.REF:
                attributes[name] = customers[value]
            elif kind == Kind.DECIMAL:
                attributes[name] = Decimal(value)
            else:
                attributes[name] = value
        objects.append(model(record_id=record_id, **attributes))
    with transaction.atomic():
        model.objects.bulk_create(objects, batch_size=1000)
        audit_record(
            action="record.imported",
            actor=actor,
            record_type=record_type,
            details={"source": source, "count": len(objects)},
        )
    return ImportResult(record_type=record_type, created=len(objects))


def records_import_csv_text(*, record_type: str, text: str, source: str, actor: Actor) -> ImportResult:
    return records_import_csv(record_type=record_type, lines=io.StringIO(text), source=source, actor=actor)


# The change functions below write a record, store its Change and append the audit events in the
# caller's transaction (opening one when there is none), without savepoints: when one raises, the
# transaction it ran in can only be rolled back, so nothing half-written is ever committed.


@dataclass(frozen=True)
class ChangeOrigin:
    """Where an applied write comes from. Copied onto its Change and onto each of its audit events."""

    applied_by: str
    proposal_id: int | None = None
    batch_id: int | None = None
    workflow_slug: str = ""
    prompt_version: str = ""
    model_name: str = ""
    model_version: str = ""
    approver_label: str = ""
    decided_at: datetime | None = None
    reason: str = ""

    def event(self, *, ref: RecordRef, change: Change, **fields: Any) -> EventData:
        return EventData(
            action="change.applied",
            actor=Actor.worker(self.applied_by),
            record_type=ref.record_type,
            record_id=ref.record_id,
            proposal_id=self.proposal_id,
            change_id=change.id,
            batch_id=self.batch_id,
            workflow_slug=self.workflow_slug,
            model_name=self.model_name,
            model_version=self.model_version,
            prompt_version=self.prompt_version,
            approver_label=self.approver_label,
            decided_at=self.decided_at,
            reason=self.reason,
            **fields,
        )


def _change_create(
    *,
    ref: RecordRef,
    action: str,
    origin: ChangeOrigin,
    before: dict,
    after: dict,
    versions: tuple[int, int],
    **extra: Any,
) -> Change:
    change = _change(ref=ref, action=action, origin=origin, before=before, after=after, versions=versions, **extra)
    insert_one(change)
    return change


def _change(
    *,
    ref: RecordRef,
    action: str,
    origin: ChangeOrigin,
    before: dict,
    after: dict,
    versions: tuple[int, int],
    **extra: Any,
) -> Change:
    return Change(
        record_type=ref.record_type,
        record_id=ref.record_id,
        action=action,
        before=before,
        after=after,
        version_before=versions[0],
        version_after=versions[1],
        proposal_id=origin.proposal_id,
        batch_id=origin.batch_id,
        workflow_slug=origin.workflow_slug,
        prompt_version=origin.prompt_version,
        applied_by=origin.applied_by,
        **extra,
    )


def _locked_state(ref: RecordRef, current: RecordState | None, fields: list[str] | None = None) -> RecordState:
    """The record under a row lock: `current` when the caller already read it locked in this transaction."""
    return current if current is not None else get_store().fetch(ref, fields, lock=True)


def _refuse_hidden(state: RecordState, *, doing: str) -> None:
    if state.deleted:
        raise InvalidTransition(f"{state.ref} is deleted; it cannot be {doing}")
    if state.archived:
        raise InvalidTransition(f"{state.ref} is archived; it cannot be {doing}")


def _version(state: RecordState, expected_version: int | None) -> int:
    return state.version if expected_version is None else expected_version


def change_update(
    *,
    ref: RecordRef,
    values: dict[str, Any],
    origin: ChangeOrigin,
    expected_version: int | None = None,
    current: RecordState | None = None,
    change_id: UUID | None = None,
    along: Sequence[Statement] = (),
) -> Change:
    """Set fields of a record, keeping the exact values they replace. One audit event per field.

    `current` is the record as the caller read it with a lock in this same transaction (it must
    hold every field in `values`); without it the record is read and locked here. Raises
    ValidationFailed naming a bad field, InvalidTransition for a hidden record, VersionMismatch.
    `change_id` names the Change to store (a new id when not given). `along` are the caller's own
    statements for the same transaction, run first; with the built-in store on PostgreSQL they, the
    write, the Change and the audit events all travel in one round trip.
    """
    if not values:
        raise ValidationFailed([("changes", "name at least one field to change")])
    record_type = RECORD_TYPES[ref.record_type]
    problems: list[tuple[str, str]] = []
    cleaned: dict[str, Any] = {}
    for name, value in values.items():
        if not record_type.has_field(name):
            problems.append((f"changes.{name}", f"{ref.record_type} has no field '{name}'"))
            continue
        try:
            cleaned[name] = clean_value(record_type.field(name), value)
        except ValueError as error:
            problems.append((f"changes.{name}", str(error)))
    if problems:
        raise ValidationFailed(problems)
    with transaction.atomic(savepoint=False):
        state = _locked_state(ref, current, list(cleaned))
        _refuse_hidden(state, doing="updated")
        version = _version(state, expected_version)
        before = {name: state.values[name] for name in cleaned}
        store = get_store()
        statements = list(along)
        if isinstance(store, DjangoRecordStore):
            # The write goes with the other statements: it is `version + 1` or nothing (the row is
            # locked and checked), and `write.state` raises if it was nothing.
            write = store.write_query(ref, cleaned, expected_version=version)
            written_values, version_after = write.written, version + 1
            statements.append(write.statement)
        else:
            run_together(statements)
            statements, write = [], None
            written = store.write(ref, cleaned, expected_version=version)
            written_values, version_after = written.values, written.version
        after = {name: written_values[name] for name in cleaned}
        change = _change(
            ref=ref,
            action=ChangeAction.UPDATE,
            origin=origin,
            before=before,
            after=after,
            versions=(version, version_after),
            **({"id": change_id} if change_id is not None else {}),
        )
        statements.append(insert_one_statement(change))
        audit = audit_append_along(
            origin.event(ref=ref, change=change, field=name, old_value=before[name], new_value=after[name])
            for name in cleaned
        )
        answers = run_together([*statements, *audit.statements])
        if write is not None:
            write.state(answers[len(along)])
        inserted(change)
        audit.finish(answers[len(statements) :])
    return change


def _change_hide(
    *,
    ref: RecordRef,
    action: str,
    origin: ChangeOrigin,
    expected_version: int | None,
    current: RecordState | None,
) -> Change:
    store = get_store()
    key = "deleted_at" if action == ChangeAction.DELETE else "archived_at"
    with transaction.atomic(savepoint=False):
        state = _locked_state(ref, current)
        if state.deleted or (action == ChangeAction.ARCHIVE and state.archived):
            raise InvalidTransition(f"{ref} is already {'deleted' if state.deleted else 'archived'}")
        version = _version(state, expected_version)
        written = store.set_hidden(
            ref,
            archived=state.archived or action == ChangeAction.ARCHIVE,
            deleted=action == ChangeAction.DELETE,
            expected_version=version,
        )
        after = {key: store.snapshot(ref)[key]}
        change = _change_create(
            ref=ref,
            action=action,
            origin=origin,
            before={key: None},
            after=after,
            versions=(version, written.version),
        )
        audit_record_many([origin.event(ref=ref, change=change, field=key, old_value=None, new_value=after[key])])
    return change


def change_archive(
    *, ref: RecordRef, origin: ChangeOrigin, expected_version: int | None = None, current: RecordState | None = None
) -> Change:
    """Archive a record: it is kept, hidden, and restorable from the Change."""
    return _change_hide(
        ref=ref, action=ChangeAction.ARCHIVE, origin=origin, expected_version=expected_version, current=current
    )


def change_delete(
    *, ref: RecordRef, origin: ChangeOrigin, expected_version: int | None = None, current: RecordState | None = None
) -> Change:
    """Delete a record softly: it is kept, hidden, and restorable from the Change."""
    return _change_hide(
        ref=ref, action=ChangeAction.DELETE, origin=origin, expected_version=expected_version, current=current
    )


def change_merge(
    *,
    duplicate: RecordRef,
    survivor: RecordRef,
    origin: ChangeOrigin,
    expected_version: int | None = None,
    current: RecordState | None = None,
) -> Change:
    """Fold `duplicate` into `survivor`: every row that refers to the duplicate moves to the survivor,
    and the duplicate is archived.

    The Change is the duplicate's. Its `merge_payload` holds what unmerge needs: the duplicate's full
    snapshot, the survivor's version, and each moved row with its field, old and new reference and
    versions before and after the move.
    """
    if duplicate.record_type != survivor.record_type:
        raise ValidationFailed([("merge_into", f"must be a {duplicate.record_type}, like the duplicate")])
    if duplicate.record_id == survivor.record_id:
        raise ValidationFailed([("merge_into", "a record cannot be merged into itself")])
    store = get_store()
    with transaction.atomic(savepoint=False):
        state = _locked_state(duplicate, current)
        _refuse_hidden(state, doing="merged")
        try:
            survivor_state = store.fetch(survivor, [], lock=True)
        except RecordNotFound:
            raise InvalidTransition(f"the survivor {survivor} does not exist") from None
        _refuse_hidden(survivor_state, doing="merged into")
        version = _version(state, expected_version)
        snapshot = store.snapshot(duplicate)
        moved: list[dict[str, Any]] = []
        for row, field in store.referring(duplicate):
            row_state = store.fetch(row, [field], lock=True)
            written = store.write(row, {field: survivor.record_id}, expected_version=row_state.version)
            moved.append(
                {
                    "record_type": row.record_type,
                    "record_id": row.record_id,
                    "field": field,
                    "from": duplicate.record_id,
                    "to": survivor.record_id,
                    "version_before": row_state.version,
                    "version_after": written.version,
                }
            )
        hidden = store.set_hidden(duplicate, archived=True, deleted=False, expected_version=version)
        archived_at = store.snapshot(duplicate)["archived_at"]
        change = _change_create(
            ref=duplicate,
            action=ChangeAction.MERGE,
            origin=origin,
            before={"archived_at": None},
            after={"archived_at": archived_at},
            versions=(version, hidden.version),
            merge_payload={
                "survivor": {
                    "record_type": survivor.record_type,
                    "record_id": survivor.record_id,
                    "version": survivor_state.version,
                },
                "duplicate_snapshot": snapshot,
                "moved": moved,
            },
        )
        merge = {"action": "merge", "duplicate": duplicate.record_id, "survivor": survivor.record_id}
        events = [
            origin.event(
                ref=duplicate,
                change=change,
                field="archived_at",
                old_value=None,
                new_value=archived_at,
                details={**merge, "moved": len(moved)},
            ),
            origin.event(ref=survivor, change=change, details={**merge, "moved": len(moved)}),
        ]
        events.extend(
            origin.event(
                ref=RecordRef(move["record_type"], move["record_id"]),
                change=change,
                field=move["field"],
                old_value=move["from"],
                new_value=move["to"],
                details=merge,
            )
            for move in moved
        )
        audit_record_many(events)
    return change


# Undo ---------------------------------------------------------------------------------------------
# An undo puts back the exact values a change replaced, but only where the record still holds what the
# change wrote; anything changed since is a conflict, and nothing is overwritten. An undo is itself a
# Change (action `revert`, `reverts` the change), audited, and can be undone in turn.

VISIBILITY_FIELDS = ("archived_at", "deleted_at")


class RevertOutcome(StrEnum):
    REVERTED = "reverted"
    CONFLICT = "conflict"
    ALREADY_UNDONE = "already_undone"
    MISSING = "missing"


@dataclass(frozen=True)
class RevertPart:
    """One value an undo puts back: as it was before the change, as the change wrote it, and as it is now.

    `key` names the part: the field for the change's own record, `<type>:<id>.<field>` for a row a
    merge moved. A `required` part cannot be left out (an unmerge always brings the duplicate back).
    """

    key: str
    record: RecordRef
    field: str
    before: Any
    written: Any
    now: Any
    conflict: bool = False
    note: str = ""
    required: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "record_type": self.record.record_type,
            "record_id": self.record.record_id,
            "field": self.field,
            "before": self.before,
            "written": self.written,
            "now": self.now,
            "note": self.note,
        }


@dataclass
class RevertResult:
    change: Change
    outcome: RevertOutcome
    parts: list[RevertPart] = dataclasses.field(default_factory=list)
    revert: Change | None = None
    undone_by: UUID | None = None
    detail: str = ""
    left: list[RevertPart] = dataclasses.field(default_factory=list)

    @property
    def conflicts(self) -> list[RevertPart]:
        return [part for part in self.parts if part.conflict]


def _describe_part(part: RevertPart) -> str:
    text = f"{part.record} {part.field}: before {part.before!r}, we wrote {part.written!r}, now {part.now!r}"
    return f"{text} ({part.note})" if part.note else text


class RevertConflict(InvalidTransition):
    """The record changed since the change: undoing it would overwrite a later change, so nothing was written."""

    def __init__(self, result: RevertResult) -> None:
        self.result = result
        described = "; ".join(_describe_part(part) for part in result.conflicts)
        super().__init__(
            f"change {result.change.id} was not undone: {described}",
            field="fields",
            extra={"conflicts": [part.as_dict() for part in result.conflicts]},
        )


def _own_ref(change: Change) -> RecordRef:
    return RecordRef(change.record_type, change.record_id)


def _moves(change: Change) -> list[dict[str, Any]]:
    return list((change.merge_payload or {}).get("moved", []))


class RevertWorkspace:
    """The records a run of undos reads, kept as they will be after each undo so far.

    A run that writes reads every record under a row lock first and writes them once at the end; a
    dry run reads without locks, writes nothing, and can be carried from one chunk to the next so a
    long plan is simulated in order.
    """

    def __init__(self, *, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.snapshots: dict[RecordRef, dict[str, Any]] = {}
        self.read_versions: dict[RecordRef, int] = {}
        self.missing: set[RecordRef] = set()
        self.dirty: dict[RecordRef, set[str]] = {}
        self.undone: dict[UUID, UUID] = {}
        self.reverts: list[Change] = []
        self.events: list[EventData] = []

    def load(self, refs: Iterable[RecordRef]) -> None:
        wanted = list(dict.fromkeys(ref for ref in refs if ref not in self.snapshots and ref not in self.missing))
        if not wanted:
            return
        found = get_store().snapshot_many(wanted, lock=not self.dry_run)
        for ref in wanted:
            if ref in found:
                self.snapshots[ref] = found[ref]
                self.read_versions[ref] = found[ref]["version"]
            else:
                self.missing.add(ref)

    def value(self, ref: RecordRef, name: str) -> Any:
        snapshot = self.snapshots[ref]
        return snapshot[name] if name in VISIBILITY_FIELDS else snapshot["values"].get(name)

    def version(self, ref: RecordRef) -> int:
        return int(self.snapshots[ref]["version"])

    def set(self, ref: RecordRef, name: str, value: Any) -> None:
        snapshot = self.snapshots[ref]
        if name in VISIBILITY_FIELDS:
            snapshot[name] = value
        else:
            snapshot["values"][name] = value
        self.dirty.setdefault(ref, set()).add(name)

    def bump(self, ref: RecordRef) -> tuple[int, int]:
        before = self.version(ref)
        self.snapshots[ref]["version"] = before + 1
        self.dirty.setdefault(ref, set())
        return before, before + 1

    def changed_since(self, ref: RecordRef, version: int) -> str:
        """Why `ref` counts as changed since it was at `version` ("" when it does not).

        A write since then counts unless it has been undone; an undo counts only when what it undid
        came before `version` (undoing a later write puts back what was there at `version`).
        """
        if self.version(ref) == version:
            return ""
        rows: list[tuple[UUID, str, UUID | None]] = [
            (change_id, action, target)
            for change_id, action, target in Change.objects.filter(
                record_type=ref.record_type, record_id=ref.record_id, version_before__gte=version
            ).values_list("id", "action", "reverts_id")
        ]
        rows.extend(
            (revert.id, ChangeAction.REVERT, revert.reverts_id)
            for revert in self.reverts
            if _own_ref(revert) == ref or any(_moved_ref(move) == ref for move in _moves(revert))
        )
        since = {change_id for change_id, _, _ in rows}
        undone = set(changes_undone(change_ids=since)) | set(self.undone)
        for change_id, action, target in rows:
            if change_id in undone or (action == ChangeAction.REVERT and target in since):
                continue
            return f"changed since: version {self.version(ref)}, the change left it at {version}"
        return ""


def _moved_ref(move: dict[str, Any]) -> RecordRef:
    return RecordRef(move["record_type"], move["record_id"])


def _revert_parts(change: Change, workspace: RevertWorkspace) -> list[RevertPart]:
    ref = _own_ref(change)
    moves = _moves(change)
    parts = []
    for name, written in change.after.items():
        now = workspace.value(ref, name)
        parts.append(
            RevertPart(
                key=name,
                record=ref,
                field=name,
                before=change.before.get(name),
                written=written,
                now=now,
                conflict=now != written,
                required=bool(moves),
            )
        )
    for move in moves:
        row = _moved_ref(move)
        key = f"{row}.{move['field']}"
        if row in workspace.missing:
            parts.append(RevertPart(key, row, move["field"], move["from"], move["to"], None, True, "no longer exists"))
            continue
        now = workspace.value(row, move["field"])
        note = "" if now != move["to"] else workspace.changed_since(row, move["version_after"])
        conflict = now != move["to"] or bool(note)
        parts.append(RevertPart(key, row, move["field"], move["from"], move["to"], now, conflict, note))
    return parts


def _part_keys(change: Change) -> dict[str, bool]:
    """The parts an undo of `change` has, each with whether it is required. Known from the change alone."""
    moves = _moves(change)
    keys = dict.fromkeys(change.after, bool(moves))
    keys.update((f"{_moved_ref(move)}.{move['field']}", False) for move in moves)
    return keys


def _check_fields(changes: Sequence[Change], fields: Mapping[UUID, Collection[str] | None] | None) -> None:
    """Refuse, before anything is read or locked, a choice of parts that does not fit its change."""
    problems: list[tuple[str, str]] = []
    for change in changes:
        chosen = (fields or {}).get(change.id)
        if chosen is None:
            continue
        keys = _part_keys(change)
        if not chosen:
            problems.append(("fields", "choose at least one field to undo"))
        problems.extend(
            ("fields", f"'{name}' is not a part of change {change.id}") for name in chosen if name not in keys
        )
        problems.extend(
            ("fields", f"{key} cannot be left out: an unmerge always brings the duplicate back")
            for key, required in keys.items()
            if required and key not in chosen
        )
    if problems:
        raise ValidationFailed(problems)


def _revert_one(
    change: Change,
    workspace: RevertWorkspace,
    undone: dict[UUID, UUID],
    *,
    fields: Collection[str] | None,
    actor: Actor,
    applied_by: str,
    reason: str,
) -> RevertResult:
    ref = _own_ref(change)
    undone_by = workspace.undone.get(change.id) or undone.get(change.id)
    if undone_by is not None:
        return RevertResult(
            change, RevertOutcome.ALREADY_UNDONE, undone_by=undone_by, detail=f"already undone by change {undone_by}"
        )
    if ref in workspace.missing:
        return RevertResult(change, RevertOutcome.MISSING, detail=f"{ref} no longer exists")
    parts = _revert_parts(change, workspace)
    chosen = parts if fields is None else [part for part in parts if part.key in fields]
    if any(part.conflict for part in chosen):
        return RevertResult(change, RevertOutcome.CONFLICT, parts=parts, detail=f"{ref} changed since the change")
    left = [part for part in parts if part not in chosen]
    for part in chosen:
        workspace.set(part.record, part.field, part.before)
    versions = {record: workspace.bump(record) for record in dict.fromkeys(part.record for part in chosen)}
    own = [part for part in chosen if part.record == ref]
    rows = [part for part in chosen if part.record != ref]
    payload = None
    if change.merge_payload is not None:
        payload = {
            "survivor": change.merge_payload.get("survivor"),
            "undoes": change.action,
            "moved": [
                {
                    "record_type": part.record.record_type,
                    "record_id": part.record.record_id,
                    "field": part.field,
                    "from": part.now,
                    "to": part.before,
                    "version_before": versions[part.record][0],
                    "version_after": versions[part.record][1],
                }
                for part in rows
            ],
            "left": [part.as_dict() for part in left],
        }
    revert = Change(
        record_type=ref.record_type,
        record_id=ref.record_id,
        action=ChangeAction.REVERT,
        before={part.field: part.now for part in own},
        after={part.field: part.before for part in own},
        version_before=versions[ref][0],
        version_after=versions[ref][1],
        proposal_id=change.proposal_id,
        batch_id=change.batch_id,
        workflow_slug=change.workflow_slug,
        prompt_version=change.prompt_version,
        reverts_id=change.id,
        merge_payload=payload,
        applied_at=timezone.now(),
        applied_by=applied_by,
    )
    workspace.undone[change.id] = revert.id
    workspace.reverts.append(revert)
    details: dict[str, Any] = {"reverts": str(change.id), "undoes": change.action}
    if left:
        details["left"] = [part.key for part in left]

    def event(**fields: Any) -> EventData:
        return EventData(
            action="change.reverted",
            actor=actor,
            proposal_id=change.proposal_id,
            change_id=revert.id,
            batch_id=change.batch_id,
            workflow_slug=change.workflow_slug,
            prompt_version=change.prompt_version,
            reason=reason,
            **fields,
        )

    workspace.events.extend(
        event(
            record_type=part.record.record_type,
            record_id=part.record.record_id,
            field=part.field,
            old_value=part.now,
            new_value=part.before,
            details=details,
        )
        for part in chosen
    )
    survivor = (change.merge_payload or {}).get("survivor")
    if survivor:
        workspace.events.append(
            event(
                record_type=survivor["record_type"],
                record_id=survivor["record_id"],
                details={**details, "duplicate": ref.record_id, "moved": len(rows)},
            )
        )
    return RevertResult(change, RevertOutcome.REVERTED, parts=parts, revert=revert, left=left)


def _revert_all(
    *,
    changes: Sequence[Change],
    workspace: RevertWorkspace,
    fields: Mapping[UUID, Collection[str] | None] | None,
    actor: Actor,
    applied_by: str,
    reason: str,
) -> list[RevertResult]:
    refs: list[RecordRef] = []
    for change in changes:
        refs.append(_own_ref(change))
        refs.extend(_moved_ref(move) for move in _moves(change))
    workspace.load(refs)
    undone = changes_undone(change_ids=[change.id for change in changes if change.id not in workspace.undone])
    return [
        _revert_one(
            change,
            workspace,
            undone,
            fields=(fields or {}).get(change.id),
            actor=actor,
            applied_by=applied_by,
            reason=reason,
        )
        for change in changes
    ]


def changes_revert(
    *,
    changes: Sequence[Change],
    actor: Actor,
    applied_by: str,
    reason: str = "",
    fields: Mapping[UUID, Collection[str] | None] | None = None,
) -> list[RevertResult]:
    """Undo each change, in the order given (newest first when several touch one record).

    Every record involved is locked first (in one order, so concurrent undos cannot deadlock), each
    undo is checked against the record as the undos before it left it, and then all are written at
    once with their Changes and `change.reverted` events, in the caller's transaction (one is opened
    when there is none). A change whose record changed since comes back as a conflict and nothing of
    it is written; one already undone comes back as such. `fields` maps a change id to the parts to
    undo (see RevertPart.key); unknown or missing required parts raise ValidationFailed.
    """
    _check_fields(changes, fields)
    workspace = RevertWorkspace(dry_run=False)
    with transaction.atomic(savepoint=False):
        results = _revert_all(
            changes=changes, workspace=workspace, fields=fields, actor=actor, applied_by=applied_by, reason=reason
        )
        if workspace.reverts:
            get_store().restore_many(
                [
                    (
                        ref,
                        {
                            "values": {
                                name: workspace.snapshots[ref]["values"][name]
                                for name in names
                                if name not in VISIBILITY_FIELDS
                            },
                            "archived_at": workspace.snapshots[ref]["archived_at"],
                            "deleted_at": workspace.snapshots[ref]["deleted_at"],
                            "version": workspace.snapshots[ref]["version"],
                        },
                        workspace.read_versions[ref],
                    )
                    for ref, names in workspace.dirty.items()
                ]
            )
            Change.objects.bulk_create(workspace.reverts, batch_size=500)
            audit_record_many(workspace.events)
    return results


def changes_revert_preview(
    *,
    changes: Sequence[Change],
    workspace: RevertWorkspace | None = None,
    fields: Mapping[UUID, Collection[str] | None] | None = None,
) -> list[RevertResult]:
    """What `changes_revert` would do, writing nothing and taking no locks (a dry run).

    Pass the same workspace to successive calls to simulate a long plan chunk by chunk, in order.
    """
    workspace = workspace or RevertWorkspace(dry_run=True)
    if not workspace.dry_run:
        raise ValueError("a preview needs a dry-run workspace")
    _check_fields(changes, fields)
    return _revert_all(
        changes=changes, workspace=workspace, fields=fields, actor=Actor.system("preview"), applied_by="", reason=""
    )


def change_revert(
    *, change: Change, actor: Actor, applied_by: str, fields: Collection[str] | None = None, reason: str = ""
) -> Change:
    """Undo one change: put back the exact values it replaced, if the record still holds what it wrote.

    `update` restores the fields, `archive`/`delete` bring the record back, `merge` unmerges (the
    duplicate returns and every moved row goes back), and a `revert` is undone like any change.
    `fields` undoes only those parts (a person leaving the conflicting ones alone). Returns the
    revert Change. Raises RevertConflict (nothing written) listing each field as it was before, as
    the change wrote it and as it is now; InvalidTransition when already undone; NotFound when the
    record is gone.
    """
    [result] = changes_revert(
        changes=[change],
        actor=actor,
        applied_by=applied_by,
        reason=reason,
        fields={change.id: fields} if fields is not None else None,
    )
    if result.outcome == RevertOutcome.CONFLICT:
        raise RevertConflict(result)
    if result.outcome == RevertOutcome.ALREADY_UNDONE:
        raise InvalidTransition(f"change {change.id} was already undone by change {result.undone_by}")
    if result.revert is None:
        raise NotFound(result.detail)
    return result.revert
