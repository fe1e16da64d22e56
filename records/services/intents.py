"""Writing to a store outside Countersign's database exactly once: intent, write, done.

Countersign's commit and the store's write cannot be one transaction. So the Change is stored first,
in flight (`change_intend`: the values before, the values to write, the version expected and the
one the write makes), and committed; then the store is written, compare-and-set on the expected
version (`change_send`), and the Change is marked written with its events on the trail
(`change_finish`). A
process killed between any two steps leaves the intent in flight; whoever finds it (a retry, the
sweeper) carries it out again, reading the store first: if the store already holds the intent's
values at the version it makes, the Change is finished without writing again; if it still holds the
values before at the expected version, the write is sent; anything else is `IntentOvertaken`, for a
person to decide.

Nothing of Countersign's database is held open while the store is written: the store may be slow,
and on SQLite an open write transaction would hold every other writer back.
"""

from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.services import audit_append_along
from core.bulk import insert_one, inserted
from core.roundtrip import Rows, Statement, built_once, run_together
from records.models import Change, ChangeAction
from records.services.changes import ChangeOrigin, change_build, refuse_hidden, values_cleaned
from records.services.outages import store_outage_clear_statement, store_outage_cleared
from records.store import RecordNotFound, RecordRef, RecordState, VersionMismatch, get_store

HIDDEN_KEY: dict[str, str] = {ChangeAction.ARCHIVE: "archived_at", ChangeAction.DELETE: "deleted_at"}


class IntentOvertaken(Exception):
    """The record holds neither what the intent expected to replace nor what it wrote: something else
    changed it. Nothing is written; `state` is what the store holds (None when the record is gone)."""

    def __init__(self, change: Change, state: RecordState | None, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.change = change
        self.state = state
        self.problems = problems


def change_in_flight(*, proposal_id: int) -> Change | None:
    """The proposal's Change still in flight (stored, not yet known written), if it has one."""
    return Change.with_in_flight.filter(proposal_id=proposal_id, in_flight=True).first()


def change_in_flight_statement(*, proposal_id: int) -> Statement:
    """Whether the proposal has a Change in flight, as a statement to send with others (its rows:
    the intent's id, or none); `change_in_flight_of` reads the answer."""
    sql = built_once(
        "change in flight",
        lambda: f"SELECT id FROM {Change._meta.db_table} WHERE proposal_id = %s AND in_flight LIMIT 1",  # noqa: S608
    )
    return Statement(sql, [proposal_id], prepared=True)


def change_in_flight_of(rows: Rows) -> Change | None:
    """The intent `change_in_flight_statement` found, read whole (it is rare: a write interrupted)."""
    return Change.with_in_flight.get(pk=rows[0][0]) if rows else None


def change_intend(
    *, ref: RecordRef, action: str, origin: ChangeOrigin, current: RecordState, values: dict[str, Any] | None = None
) -> Change:
    """Store the intent of a write (an update of `values`, an archive or a delete) inside the caller's
    transaction, which commits it before anything is sent to the store. `current` is the record as
    the caller read it and checked it; the write expects its version and makes the next one."""
    if action == ChangeAction.UPDATE:
        after = values_cleaned(ref=ref, values=values or {})
        refuse_hidden(current, doing="updated")
        before = {name: current.values[name] for name in after}
    elif action in HIDDEN_KEY:
        if current.deleted or (action == ChangeAction.ARCHIVE and current.archived):
            refuse_hidden(current, doing=f"{action}d")
        # The moment the store records is known once it answers; until then the intent names its own.
        before, after = {HIDDEN_KEY[action]: None}, {HIDDEN_KEY[action]: timezone.now().isoformat()}
    else:
        raise ValueError(f"a {action} is not written through an intent")
    change = change_build(
        ref=ref,
        action=action,
        origin=origin,
        before=before,
        after=after,
        versions=(current.version, current.version + 1),
        in_flight=True,
    )
    insert_one(change)
    return change


def _ref(change: Change) -> RecordRef:
    return RecordRef(change.record_type, change.record_id)


def _read(change: Change) -> RecordState | None:
    fields = list(change.after) if change.action == ChangeAction.UPDATE else []
    try:
        return get_store(change.record_type).fetch(_ref(change), fields)
    except RecordNotFound:
        return None


def _holds(change: Change, state: RecordState, values: dict[str, Any], *, hidden: bool) -> bool:
    if change.action == ChangeAction.UPDATE:
        return all(state.values.get(name) == value for name, value in values.items())
    flag = state.deleted if change.action == ChangeAction.DELETE else state.archived
    return flag == hidden


def _overtaken(change: Change, state: RecordState | None) -> IntentOvertaken:
    if state is None:
        return IntentOvertaken(change, None, [f"{_ref(change)} no longer exists"])
    problems = [f"version is now {state.version}; the write expected {change.version_before}"]
    if change.action == ChangeAction.UPDATE:
        problems += [
            f"{name} is now {state.values.get(name)!r}; it was {value!r} and the write sets {change.after[name]!r}"
            for name, value in change.before.items()
            if state.values.get(name) != change.after[name]
        ]
    return IntentOvertaken(change, state, problems)


def _written_already(change: Change) -> RecordState | None:
    """Read the store: the record when it holds the intent's values at the version it makes; None
    when it holds the values before at the expected version (the write never landed). Raises
    IntentOvertaken for anything else."""
    state = _read(change)
    if state is not None:
        if state.version == change.version_after and _holds(change, state, change.after, hidden=True):
            return state
        if state.version == change.version_before and _holds(change, state, change.before, hidden=False):
            return None
    raise _overtaken(change, state)


def _send(change: Change) -> RecordState:
    store = get_store(change.record_type)
    ref = _ref(change)
    if change.action == ChangeAction.UPDATE:
        return store.write(ref, change.after, expected_version=change.version_before)
    current = store.fetch(ref, [])
    return store.set_hidden(
        ref,
        archived=current.archived or change.action == ChangeAction.ARCHIVE,
        deleted=change.action == ChangeAction.DELETE,
        expected_version=change.version_before,
    )


def _finish_sql() -> str:
    quote = connection.ops.quote_name
    return (
        f"UPDATE {quote(Change._meta.db_table)} SET {quote('in_flight')} = %s, {quote('after')} = %s, "  # noqa: S608
        f"{quote('version_after')} = %s, {quote('applied_at')} = %s "
        f"WHERE {quote('id')} = %s AND {quote('in_flight')} = %s RETURNING {quote('id')}"
    )


def _finish_statement(change: Change) -> Statement:
    meta = Change._meta
    return Statement(
        built_once("intent: finish", _finish_sql),
        [
            False,
            meta.get_field("after").get_db_prep_save(change.after, connection),
            change.version_after,
            meta.get_field("applied_at").get_db_prep_save(change.applied_at, connection),
            meta.get_field("id").get_db_prep_save(change.id, connection),
            True,
        ],
        prepared=True,
    )


def change_send(*, change: Change, recovering: bool) -> RecordState:
    """Write an intent to its store, outside any transaction of Countersign's (a store may take its
    time to answer, and nothing of ours waits on it). Answers the record as written.

    `recovering`: the intent was stored by an earlier attempt that may have written it, so the store
    is read first, and written only if the write never landed. Two attempts at one intent cannot both
    land: the write is a compare-and-set on the version the intent expects, and the one that finds
    it taken reads the store as a recovery does. Raises IntentOvertaken when the record holds
    something else, and StoreUnavailable (from the store) when it cannot tell: the intent then stays
    in flight.
    """
    if recovering:
        landed = _written_already(change)
        if landed is not None:
            return landed
    try:
        return _send(change)
    except (VersionMismatch, RecordNotFound):
        landed = _written_already(change)
        if landed is None:  # it held the values before at the expected version a moment ago
            raise
        return landed


def change_finish(
    *, change: Change, origin: ChangeOrigin, state: RecordState, along: Sequence[Statement] = ()
) -> Change:
    """Mark the intent written at the version the store answered (`state`), with `along` (the caller's
    statements), the end of the store's outage if one was recorded, and the change's events, in one
    round trip inside the caller's transaction. The caller holds the lock under which intents are
    finished or withdrawn (its proposal's)."""
    ref = _ref(change)
    if change.action in HIDDEN_KEY:
        key = HIDDEN_KEY[change.action]
        change.after = {key: get_store(ref.record_type).snapshot(ref)[key]}
    change.in_flight = False
    change.version_after = state.version
    change.applied_at = timezone.now()
    statements = [_finish_statement(change), *along, store_outage_clear_statement(record_type=ref.record_type)]
    audit = audit_append_along(
        origin.event(ref=ref, change=change, field=name, old_value=change.before[name], new_value=value)
        for name, value in change.after.items()
    )
    with transaction.atomic(savepoint=False):
        answers: list[Rows] = run_together([*statements, *audit.statements])
        if not answers[0]:
            raise RuntimeError(f"change {change.id} was no longer in flight; nothing is marked")
        inserted(change)
        audit.finish(answers[len(statements) :])
        store_outage_cleared(record_type=ref.record_type, rows=answers[len(statements) - 1], worker=origin.applied_by)
    return change


def change_withdraw(*, change: Change) -> None:
    """Drop an intent that was never written (the store holds something else): the record's history
    stays as it is, and the proposal is free to be decided again."""
    Change.with_in_flight.filter(pk=change.pk, in_flight=True).delete()
