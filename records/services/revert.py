"""Undoing changes: put back exactly what a change replaced, never over a later edit."""

import copy
import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from audit.services import Actor, EventData, audit_record_many
from core.errors import InvalidTransition, NotFound, ValidationFailed
from records.models import Change, ChangeAction
from records.selectors import changes_undone
from records.services.restoring import NotWritten, RecordWrite, Refusal, records_restore
from records.store import RecordRef, Snapshot, snapshot_refs

VISIBILITY_FIELDS = ("archived_at", "deleted_at")


class RevertOutcome(StrEnum):
    REVERTED = "reverted"
    CONFLICT = "conflict"
    ALREADY_UNDONE = "already_undone"
    MISSING = "missing"
    UNREACHABLE = "unreachable"


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
        self.read: dict[RecordRef, Snapshot] = {}
        self.read_versions: dict[RecordRef, int] = {}
        self.touched: dict[UUID, set[RecordRef]] = {}
        self.missing: set[RecordRef] = set()
        self.dirty: dict[RecordRef, set[str]] = {}
        self.undone: dict[UUID, UUID] = {}
        self.reverts: list[Change] = []
        self.events: list[EventData] = []

    def load(self, refs: Iterable[RecordRef]) -> None:
        wanted = list(dict.fromkeys(ref for ref in refs if ref not in self.snapshots and ref not in self.missing))
        if not wanted:
            return
        found = snapshot_refs(wanted, lock=not self.dry_run)
        for ref in wanted:
            if ref in found:
                self.snapshots[ref] = found[ref]
                self.read[ref] = copy.deepcopy(found[ref])
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
    workspace.touched[revert.id] = set(versions)
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


def _record_writes(workspace: RevertWorkspace) -> dict[RecordRef, RecordWrite]:
    """Each record the undos changed, as they left it, with the version and state it was read at."""
    writes = {}
    for ref, names in workspace.dirty.items():
        snapshot = workspace.snapshots[ref]
        values = {name: snapshot["values"][name] for name in names if name not in VISIBILITY_FIELDS}
        writes[ref] = RecordWrite(
            ref=ref,
            snapshot={
                "values": values,
                "archived_at": snapshot["archived_at"],
                "deleted_at": snapshot["deleted_at"],
                "version": snapshot["version"],
            },
            read_version=workspace.read_versions[ref],
            read=workspace.read[ref],
        )
    return writes


def _not_written(result: RevertResult, not_written: Mapping[UUID, NotWritten]) -> RevertResult:
    """The result of an undo whose records were not all written: nothing of it stands."""
    why = not_written.get(result.revert.id) if result.revert is not None else None
    if why is None:
        return result
    outcome = RevertOutcome.CONFLICT if why.refusal == Refusal.CHANGED else RevertOutcome.UNREACHABLE
    note = "changed outside Countersign while the undo ran" if why.refusal == Refusal.CHANGED else "unreachable"
    parts = [
        dataclasses.replace(part, conflict=True, note=note) if part.record == why.refused else part
        for part in result.parts
    ]
    detail = why.detail
    if why.left:
        detail += "; written and could not be put back: " + ", ".join(why.left)
    return RevertResult(result.change, outcome, parts=parts, detail=detail)


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
    it is written; one already undone comes back as such. A record held by a store outside the
    database cannot roll back with the transaction: it is written as one compare-and-set of its own,
    and when it refuses, the undos touching it come back as conflicts (changed there meanwhile) or
    `unreachable`, while the others are written and recorded (see `records.services.restoring`).
    `fields` maps a change id to the parts to undo (see RevertPart.key); unknown or missing required
    parts raise ValidationFailed.
    """
    _check_fields(changes, fields)
    workspace = RevertWorkspace(dry_run=False)
    with transaction.atomic(savepoint=False):
        results = _revert_all(
            changes=changes, workspace=workspace, fields=fields, actor=actor, applied_by=applied_by, reason=reason
        )
        if workspace.reverts:
            not_written = records_restore(writes=_record_writes(workspace), touched=workspace.touched)
            if not_written:
                results = [_not_written(result, not_written) for result in results]
                workspace.reverts = [revert for revert in workspace.reverts if revert.id not in not_written]
                workspace.events = [event for event in workspace.events if event.change_id not in not_written]
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
