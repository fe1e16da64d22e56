"""Writes to the record store: importing new records, and the Changes that every later write goes through."""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import transaction

from audit.services import Actor, EventData, audit_record, audit_record_many
from core.bulk import insert_one
from core.errors import InvalidTransition, ValidationFailed
from records.catalogue import RECORD_TYPES, Kind, clean_value
from records.models import Change, ChangeAction, Customer
from records.store import MODELS, RecordNotFound, RecordRef, RecordState, get_store

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
    change = Change(
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
    insert_one(change)
    return change


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
) -> Change:
    """Set fields of a record, keeping the exact values they replace. One audit event per field.

    `current` is the record as the caller read it with a lock in this same transaction (it must
    hold every field in `values`); without it the record is read and locked here. Raises
    ValidationFailed naming a bad field, InvalidTransition for a hidden record, VersionMismatch.
    `change_id` names the Change to store (a new id when not given).
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
        written = get_store().write(ref, cleaned, expected_version=version)
        before = {name: state.values[name] for name in cleaned}
        after = {name: written.values[name] for name in cleaned}
        change = _change_create(
            ref=ref,
            action=ChangeAction.UPDATE,
            origin=origin,
            before=before,
            after=after,
            versions=(version, written.version),
            **({"id": change_id} if change_id is not None else {}),
        )
        audit_record_many(
            origin.event(ref=ref, change=change, field=name, old_value=before[name], new_value=after[name])
            for name in cleaned
        )
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
