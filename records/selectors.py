"""Reads about records: what a record looked like at a given moment, rebuilt from its Changes."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from records.catalogue import RECORD_TYPES, Kind
from records.models import Change, ChangeAction
from records.store import RecordRef, get_store


@dataclass(frozen=True)
class RecordStateAt:
    ref: RecordRef
    at: datetime
    version: int
    values: dict[str, Any]
    archived: bool
    deleted: bool
    changes_after: int


def _moves_since(ref: RecordRef, at: datetime) -> list[tuple[int, dict[str, Any]]]:
    """Moves of `ref` by merges after `at` (a merge's Change belongs to the duplicate, not the moved row)."""
    if not any(spec.kind == Kind.REF for spec in RECORD_TYPES[ref.record_type].fields):
        return []
    steps = []
    merges = Change.objects.filter(applied_at__gt=at, merge_payload__isnull=False).only("merge_payload")
    for change in merges:
        for move in (change.merge_payload or {}).get("moved", []):
            if move["record_type"] == ref.record_type and move["record_id"] == ref.record_id:
                steps.append((move["version_before"], {move["field"]: move["from"]}))
    return steps


def record_state_at(*, ref: RecordRef, at: datetime) -> RecordStateAt:
    """The record as it was at `at`: its current snapshot with every later write walked back, newest first.

    Each Change keeps the exact values it replaced (`before`), and every write bumps the version,
    so restoring `before` in descending version order undoes the writes one by one.
    """
    snapshot = get_store().snapshot(ref)
    state: dict[str, Any] = {
        **snapshot["values"],
        "archived_at": snapshot["archived_at"],
        "deleted_at": snapshot["deleted_at"],
    }
    version = snapshot["version"]
    later = Change.objects.filter(record_type=ref.record_type, record_id=ref.record_id, applied_at__gt=at)
    steps = [(change.version_before, change.before) for change in later.only("version_before", "before")]
    steps.extend(_moves_since(ref, at))
    for version_before, before in sorted(steps, key=lambda step: step[0], reverse=True):
        state.update(before)
        version = version_before
    archived_at = state.pop("archived_at")
    deleted_at = state.pop("deleted_at")
    return RecordStateAt(
        ref=ref,
        at=at,
        version=version,
        values=state,
        archived=archived_at is not None,
        deleted=deleted_at is not None,
        changes_after=len(steps),
    )


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
