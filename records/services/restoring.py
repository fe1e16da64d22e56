"""Writing an undo's records back, in Countersign's database and in systems of record outside it.

The built-in store's writes roll back with the caller's transaction, so an undo writes its records
there together and lets a refusal undo everything. A store outside the database cannot roll back:
each of its records is written as one compare-and-set of its own, and a record that refuses (changed
there since the undo read it, gone, or the store unreachable) takes down only the undos that touch
it. Those that touch several records held outside (an unmerge) stand or fall together: when one of
their records refuses, those already written are written back as they were read. What was written
is kept and recorded; what was not is reported, never left half done in silence.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from django.db import transaction

from records.store import (
    RecordNotFound,
    RecordRef,
    Snapshot,
    StoreUnavailable,
    VersionMismatch,
    get_store,
    restore_refs,
)


class Refusal(StrEnum):
    CHANGED = "changed"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class RecordWrite:
    """One record an undo writes: the snapshot to set, the version it was read at, and as it was read."""

    ref: RecordRef
    snapshot: Snapshot
    read_version: int
    read: Snapshot


@dataclass(frozen=True)
class NotWritten:
    """Why the undos of a group were not written: `refused` is the record that refused, `detail` says
    why in words, and `left` lists records of the group that were written and could not be put back."""

    refusal: Refusal
    refused: RecordRef
    detail: str
    left: tuple[str, ...] = ()


def _outside(ref: RecordRef) -> bool:
    return not get_store(ref.record_type).in_default_database


def _groups(touched: Mapping[UUID, set[RecordRef]]) -> list[tuple[set[UUID], set[RecordRef]]]:
    """The undos that stand or fall together, because they share a record held outside, with their records."""
    groups: list[tuple[set[UUID], set[RecordRef]]] = []
    for revert_id, refs in touched.items():
        outside = {ref for ref in refs if _outside(ref)}
        if not outside:
            continue
        joined = [group for group in groups if group[1] & outside]
        ids, records = {revert_id}, set(refs)
        for group in joined:
            ids |= group[0]
            records |= group[1]
            groups.remove(group)
        groups.append((ids, records))
    return groups


def _item(write: RecordWrite) -> tuple[RecordRef, Snapshot, int]:
    return write.ref, write.snapshot, write.read_version


def _put_back(writes: Iterable[RecordWrite]) -> list[str]:
    """Write records back as they were read, each one version further on. Answers those that refused."""
    left = []
    for write in writes:
        read = {**write.read, "values": {name: write.read["values"][name] for name in write.snapshot["values"]}}
        version = int(write.snapshot["version"])
        try:
            restore_refs([(write.ref, {**read, "version": version + 1}, version)])
        except (VersionMismatch, RecordNotFound, StoreUnavailable) as error:
            left.append(f"{write.ref} ({error})")
    return left


def records_restore(
    *, writes: Mapping[RecordRef, RecordWrite], touched: Mapping[UUID, set[RecordRef]]
) -> dict[UUID, NotWritten]:
    """Write each record of an undo back, inside the caller's transaction. Answers, for each undo
    (by the id of its revert Change) that was not written, why.

    Records in the database are written first, together; a refusal there raises, before anything
    outside is written, and the caller's transaction rolls back. Records outside are written one
    compare-and-set each, a group at a time (see the module's docstring). A store unreachable before
    any record outside was written raises StoreUnavailable, so nothing is written at all; once some
    were, it ends the run there, and every group not yet written is reported unreachable.
    """
    groups = _groups(touched)
    grouped = {ref for _, refs in groups for ref in refs}
    restore_refs([_item(write) for ref, write in writes.items() if ref not in grouped])
    not_written: dict[UUID, NotWritten] = {}
    wrote_outside = False
    unreachable: NotWritten | None = None
    for ids, refs in groups:
        if unreachable is not None:
            not_written.update(dict.fromkeys(ids, unreachable))
            continue
        ordered = sorted((writes[ref] for ref in refs if ref in writes), key=lambda w: (_outside(w.ref), str(w.ref)))
        done: list[RecordWrite] = []
        current = ordered[0]
        try:
            # A savepoint: the group's records in the database go back with it if one outside refuses.
            with transaction.atomic():
                for current in ordered:
                    restore_refs([_item(current)])
                    if _outside(current.ref):
                        done.append(current)
                        wrote_outside = True
        except (VersionMismatch, RecordNotFound) as error:
            detail = (
                f"{current.ref} changed outside Countersign while the undo ran ({error}); nothing of it was written"
            )
            not_written.update(
                dict.fromkeys(ids, NotWritten(Refusal.CHANGED, current.ref, detail, tuple(_put_back(done))))
            )
        except StoreUnavailable as error:
            if not wrote_outside:
                raise
            unreachable = NotWritten(
                Refusal.UNREACHABLE,
                current.ref,
                f"{error}; whether {current.ref} was written is not known, and nothing after it was tried",
                tuple(_put_back(done)),
            )
            not_written.update(dict.fromkeys(ids, unreachable))
    return not_written
