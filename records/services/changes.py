"""Every write to a record goes through a Change: update, archive, delete, merge."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction

from audit.services import Actor, EventData, audit_append_along, audit_record_many
from core.bulk import insert_one, insert_one_statement, inserted
from core.errors import InvalidTransition, ValidationFailed
from core.roundtrip import Statement, run_together
from records.catalogue import RECORD_TYPES, clean_value
from records.models import Change, ChangeAction
from records.store import RecordNotFound, RecordRef, RecordState, get_store, references_move


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
    change = change_build(ref=ref, action=action, origin=origin, before=before, after=after, versions=versions, **extra)
    insert_one(change)
    return change


def change_build(
    *,
    ref: RecordRef,
    action: str,
    origin: ChangeOrigin,
    before: dict,
    after: dict,
    versions: tuple[int, int],
    **extra: Any,
) -> Change:
    """A Change not yet stored: the caller inserts it, with its other statements."""
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
    return current if current is not None else get_store(ref.record_type).fetch(ref, fields, lock=True)


def refuse_hidden(state: RecordState, *, doing: str) -> None:
    if state.deleted:
        raise InvalidTransition(f"{state.ref} is deleted; it cannot be {doing}")
    if state.archived:
        raise InvalidTransition(f"{state.ref} is archived; it cannot be {doing}")


def _version(state: RecordState, expected_version: int | None) -> int:
    return state.version if expected_version is None else expected_version


def values_cleaned(*, ref: RecordRef, values: dict[str, Any]) -> dict[str, Any]:
    """`values` in the catalogue's plain form. Raises ValidationFailed naming each bad field."""
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
    return cleaned


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
    statements for the same transaction, run first; with a store that writes through the default
    database (the built-in one) on PostgreSQL they, the write, the Change and the audit events all
    travel in one round trip.
    """
    cleaned = values_cleaned(ref=ref, values=values)
    with transaction.atomic(savepoint=False):
        state = _locked_state(ref, current, list(cleaned))
        refuse_hidden(state, doing="updated")
        version = _version(state, expected_version)
        before = {name: state.values[name] for name in cleaned}
        store = get_store(ref.record_type)
        statements = list(along)
        write = store.write_query(ref, cleaned, expected_version=version)
        if write is not None:
            # The write goes with the other statements: it is `version + 1` or nothing (the row is
            # locked and checked), and `write.state` raises if it was nothing.
            written_values, version_after = write.written, version + 1
            statements.append(write.statement)
        else:
            run_together(statements)
            statements = []
            written = store.write(ref, cleaned, expected_version=version)
            written_values, version_after = written.values, written.version
        after = {name: written_values[name] for name in cleaned}
        change = change_build(
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
    store = get_store(ref.record_type)
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
    store = get_store(duplicate.record_type)
    with transaction.atomic(savepoint=False):
        state = _locked_state(duplicate, current)
        refuse_hidden(state, doing="merged")
        try:
            survivor_state = store.fetch(survivor, [], lock=True)
        except RecordNotFound:
            raise InvalidTransition(f"the survivor {survivor} does not exist") from None
        refuse_hidden(survivor_state, doing="merged into")
        version = _version(state, expected_version)
        snapshot = store.snapshot(duplicate)
        moves = references_move(source=duplicate, target=survivor)
        moved = [
            {
                "record_type": move.ref.record_type,
                "record_id": move.ref.record_id,
                "field": move.field,
                "from": duplicate.record_id,
                "to": survivor.record_id,
                "version_before": move.version_before,
                "version_after": move.version_after,
            }
            for move in moves
        ]
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
                ref=move.ref,
                change=change,
                field=move.field,
                old_value=duplicate.record_id,
                new_value=survivor.record_id,
                details=merge,
            )
            for move in moves
        )
        audit_record_many(events)
    return change
