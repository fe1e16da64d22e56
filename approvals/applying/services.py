"""Applying approved proposals: each write its own transaction, exactly once, never past a stop switch.

The database is the truth and a queue message is only a nudge: a task names proposal ids, and
whatever it finds approved it applies; anything left approved is found again by the sweeper.

A store whose records live in Countersign's database is written in the same transaction as the
Change and the trail. A store outside it cannot be (`records.services.intents`): the checks and the
intent commit first, then the store is written and the Change marked written under the proposal's
lock; a retry or the sweeper carries out an intent left in flight by reading the store first. A
chunk stores the intents of its consecutive proposals on such stores together, in one commit, and
then writes them one by one, reading the stop switches again before each: a switch engaged since
drops the intents not yet written, so a stop still halts the chunk within a write.
"""

import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from uuid import uuid4

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from approvals.applying.attempts import (
    attempt_failed,
    chunk_give_back,
    chunk_start,
    connection_lost,
    database_held_up,
)
from approvals.applying.callbacks import callback_queue_for
from approvals.applying.followups import followups_create_for_change
from approvals.applying.locking import Known, lock_proposal_statement, locked_proposal, mark_applied
from approvals.applying.results import ApplyResult, Outcome, StopStateUnknown
from approvals.applying.verdicts import (
    change_origin,
    mark_conflict,
    not_written,
    record_conflicts,
    refused_by_policy,
    stopped,
    write_approved,
)
from approvals.models import (
    Action,
    Proposal,
    ProposalStatus,
    Stage,
    StopScope,
    StopSwitch,
    Workflow,
)
from approvals.overrides.selectors import overridden_within
from approvals.overrides.services import override_canary_hold, override_record_apply, override_stop_hold
from approvals.stops.selectors import stops_engaged_over, stops_engaged_query
from approvals.workflows.releases import prompt_release_locked_held
from approvals.workflows.rollout import CANARY_CAP_REASON, STAGE_WAIT_REASONS
from approvals.workflows.selectors import WritePolicy, write_policies
from audit.services import Actor
from core.roundtrip import Rows, run_together
from records.models import Change
from records.services.intents import (
    IntentOvertaken,
    change_finish,
    change_in_flight_of,
    change_in_flight_statement,
    change_intend,
    change_send,
    change_withdraw,
)
from records.services.outages import store_outage_note
from records.store import (
    HeldSightings,
    RecordRef,
    RecordState,
    StoreUnavailable,
    get_store,
    sightings_held,
)

logger = logging.getLogger(__name__)

INTERRUPTED = "the chunk's time ran out before it was written; it is tried again shortly"


def _settings_number(name: str) -> float:
    return float(settings.COUNTERSIGN[name])


# Applying ----------------------------------------------------------------------------------------


def _apply_locked(
    proposal_id: int, worker: str, known: Known | None = None, policy: WritePolicy | None = None
) -> ApplyResult:
    """Lock the proposal and its record and read the stop switches over it, in that order, in one
    round trip (two when the proposal's record and batch are not `known` yet); decide; write."""
    proposal: Proposal | None = None
    prompt_held = known.prompt_held if known is not None else None  # None: not read yet
    if known is None:
        proposal = locked_proposal(run_together([lock_proposal_statement(proposal_id)])[0])
        if proposal is None:
            return ApplyResult(proposal_id, Outcome.NOT_APPROVED)
        known = Known.of(proposal)
    first = [] if proposal is not None else [lock_proposal_statement(proposal_id)]
    ref = RecordRef(known.record_type, known.record_id)
    store = get_store(ref.record_type)
    record = store.fetch_query(ref, lock=True)  # None: the store is not in this database, read it below
    # On a store outside the database, whether an earlier attempt left an intent: read under the lock.
    in_flight = [] if store.in_default_database else [change_in_flight_statement(proposal_id=proposal_id)]
    stops = stops_engaged_query(workflow_id=known.workflow_id, batch_id=known.batch_id, lock=True)
    try:
        rows = run_together([*first, *([record.statement] if record else []), *in_flight, stops.statement])
    except DatabaseError as error:  # fail closed: whatever stops us reading the switches stops the write
        if database_held_up(error) or connection_lost(error):
            raise  # nothing written either way; the write is tried again without holding the chunk
        raise StopStateUnknown(f"{type(error).__name__}: {error}") from error
    if proposal is None:
        proposal = locked_proposal(rows[0])
        if proposal is None:
            return ApplyResult(proposal_id, Outcome.NOT_APPROVED)
        if Known.of(proposal) != known:  # not something a proposal does; read again for what it is now
            return _apply_locked(proposal_id, worker)
    if proposal.status != ProposalStatus.APPROVED:
        return ApplyResult(proposal_id, Outcome.NOT_APPROVED)
    # A merge moves rows across record types: no store outside the database declares it can.
    outside = not store.in_default_database and proposal.action != Action.MERGE
    intent = change_in_flight_of(rows[-2]) if outside and in_flight else None
    workflow = proposal.workflow
    if workflow.stage in STAGE_WAIT_REASONS:
        return ApplyResult(proposal_id, Outcome.WAITING, STAGE_WAIT_REASONS[Stage(workflow.stage)])
    if intent is None:
        state = record.state(rows[len(first)]) if record else store.fetch(ref, lock=True)
    try:
        stop = override_stop_hold(proposal=proposal, lock=True, engaged_now=stops.switches(rows[-1]))
    except Exception as error:  # fail closed, as above
        raise StopStateUnknown(f"{type(error).__name__}: {error}") from error
    if stop.switch is not None:
        return stopped(proposal_id, stop.switch)
    if intent is not None:  # an earlier attempt's intent, checked then: the store tells how far it got
        return ApplyResult(proposal_id, Outcome.IN_FLIGHT, intent=intent, recovering=True)
    if policy is None:
        policy = write_policies(workflow_ids=[proposal.workflow_id])[proposal.workflow_id]
    refusal = policy.refusal(proposal=proposal, reviewed=proposal.decided_by_id is not None)
    if refusal:
        return refused_by_policy(proposal, refusal, worker)
    lifting = list(stop.lifting)
    capped_by = ""
    if workflow.stage == Stage.CANARY:
        # One writer at a time per canary workflow, so two workers cannot both take the last slot.
        list(Workflow.objects.select_for_update().filter(pk=workflow.pk).values_list("pk", flat=True))
        prompt_held = False
    elif workflow.stage == Stage.LIVE and prompt_held is not False:
        # Likewise per held prompt version, under its release's lock (a promotion waits for this write).
        prompt_held = prompt_release_locked_held(workflow_id=workflow.pk, prompt_version=proposal.prompt_version)
    if workflow.stage == Stage.CANARY or prompt_held:
        canary = override_canary_hold(proposal=proposal, prompt_held=bool(prompt_held))
        capped_by = canary.reason
        if canary.holds:
            return ApplyResult(proposal_id, Outcome.WAITING, capped_by, liftable=True, prompt_hold=bool(prompt_held))
        if canary.lifting is not None:
            lifting.append(canary.lifting)
    problems = record_conflicts(proposal, state)
    if lifting and not override_record_apply(
        overrides=lifting, actor=Actor.worker(worker), proposal=proposal, written=not problems
    ):
        # An override ended between reading it and using it: its block is back.
        if stop.lifting:
            return stopped(proposal_id, stop.engaged[0])
        return ApplyResult(
            proposal_id, Outcome.WAITING, capped_by or CANARY_CAP_REASON, liftable=True, prompt_hold=bool(prompt_held)
        )
    if problems:
        return mark_conflict(proposal, state, problems, worker)
    if outside:
        values = proposal.changes if proposal.action == Action.UPDATE else None
        change = change_intend(
            ref=ref, action=proposal.action, origin=change_origin(proposal, worker), current=state, values=values
        )
        return ApplyResult(proposal_id, Outcome.IN_FLIGHT, intent=change)
    if proposal.action == Action.UPDATE:
        # Marked in the same round trip as the write, under a new Change's id, so that the audit
        # append, which holds the chain lock until the commit, is the transaction's last statement.
        change_id = uuid4()
        change = write_approved(proposal, state, worker, change_id, along=[mark_applied(proposal, change_id)])
    else:
        change = write_approved(proposal, state, worker)
        run_together([mark_applied(proposal, change.id)])
    followups_create_for_change(proposal=proposal, change_id=change.id)
    callback_queue_for(proposal=proposal, event="applied")
    return ApplyResult(proposal_id, Outcome.APPLIED, change_id=change.id)


def _mark_overtaken(proposal: Proposal, overtaken: IntentOvertaken, worker: str) -> ApplyResult:
    """The store holds neither the values the intent replaces nor those it writes: nothing more is
    written, the intent is dropped, and a person sees what the store holds."""
    change_withdraw(change=overtaken.change)
    state = overtaken.state
    details = {
        "base": proposal.base,
        "current": state.values if state is not None else None,
        "proposed": proposal.changes,
        "version": state.version if state is not None else None,
        "expected_version": overtaken.change.version_before,
    }
    reason = "; ".join(overtaken.problems)
    return not_written(proposal, status=ProposalStatus.CONFLICT, reason=reason, worker=worker, details=details)


def _locked_if_approved(proposal_id: int) -> Proposal | None:
    proposal = locked_proposal(run_together([lock_proposal_statement(proposal_id)])[0])
    return proposal if proposal is not None and proposal.status == ProposalStatus.APPROVED else None


@dataclass(frozen=True)
class _Sent:
    """An intent written to its store (or found written there), its done mark still to commit."""

    proposal_id: int
    change: Change
    state: RecordState


def _send_intent(proposal_id: int, worker: str, change: Change, *, recovering: bool) -> ApplyResult | _Sent:
    """Write the committed intent to its store, with no transaction of ours open while it answers.
    What the store answered is the `_Sent` to mark done; an intent the store shows overtaken is
    dropped, and its proposal becomes a conflict."""
    try:
        state = change_send(change=change, recovering=recovering)
    except IntentOvertaken as overtaken:
        with transaction.atomic():
            proposal = _locked_if_approved(proposal_id)
            if proposal is None:
                return ApplyResult(proposal_id, Outcome.NOT_APPROVED)
            return _mark_overtaken(proposal, overtaken, worker)
    return _Sent(proposal_id, change, state)


def _withdraw_ahead(result: ApplyResult | None) -> None:
    """Drop an intent stored ahead that will not be written now (what holds its proposal is found
    again by its next attempt). One an earlier attempt stored may have been written: it stays."""
    if result is None or result.intent is None or result.recovering:
        return
    with transaction.atomic():
        if _locked_if_approved(result.proposal_id) is not None:
            change_withdraw(change=result.intent)


def _intend_ahead(
    proposal_ids: Sequence[int],
    worker: str,
    known: dict[int, Known],
    policies: dict[int, WritePolicy],
    interrupted_by: tuple[type[BaseException], ...],
) -> tuple[dict[int, ApplyResult], frozenset[int]] | None:
    """Check these proposals, each on a store outside the database, as `_apply_locked` checks one,
    each under a savepoint, and store their intents in one transaction: one commit for them all.

    It goes on while each answers an intent; the first that answers anything else (a conflict, a
    stop, a failure) ends it, with its result. Answers the results and the stop switches engaged
    when it began (a switch engaged since stops the writes not yet sent), or None when the
    database connection dropped: nothing was stored, and the caller takes them one at a time.
    """
    results: dict[int, ApplyResult] = {}
    try:
        with transaction.atomic():
            seen = frozenset(StopSwitch.objects.filter(released_at__isnull=True).values_list("pk", flat=True))
            for proposal_id in proposal_ids:
                item = known[proposal_id]
                try:
                    with transaction.atomic():
                        result = _apply_locked(proposal_id, worker, item, policies[item.workflow_id])
                except interrupted_by:
                    raise
                except StoreUnavailable as error:
                    result = _store_unreachable(proposal_id, error, worker)
                except StopStateUnknown as error:
                    logger.error("proposal %s: the stop switches could not be read (%s)", proposal_id, error)
                    result = ApplyResult(proposal_id, Outcome.BLOCKED, f"the stop switches could not be read: {error}")
                except Exception as error:
                    if connection_lost(error):
                        raise
                    held_up = database_held_up(error)
                    if held_up is not None:
                        logger.warning("proposal %s: %s; nothing written, tried again shortly", proposal_id, held_up)
                        result = ApplyResult(proposal_id, Outcome.DEFERRED, held_up)
                    else:
                        logger.exception("proposal %s: applying failed", proposal_id)
                        result = _record_failure(proposal_id, error, worker)
                results[proposal_id] = result
                if result.intent is None:
                    break
    except interrupted_by:
        raise
    except Exception as error:
        if not connection_lost(error):
            raise
        logger.warning("the database connection dropped while storing %d intent(s); none was", len(results))
        connection.close()
        return None
    return results, seen


def _send_ahead(
    proposal_id: int, worker: str, item: Known, result: ApplyResult, intent: Change, seen: frozenset[int]
) -> ApplyResult | _Sent:
    """Write an intent stored ahead, unless a stop switch over it was engaged since: then it is dropped."""
    engaged = [
        switch
        for switch in stops_engaged_over(workflow_id=item.workflow_id, batch_id=item.batch_id)
        if switch.pk not in seen
    ]
    if engaged:
        _withdraw_ahead(result)
        return stopped(proposal_id, engaged[0])
    try:
        return _send_intent(proposal_id, worker, intent, recovering=result.recovering)
    except StoreUnavailable as error:
        return _store_unreachable(proposal_id, error, worker)
    except Exception as error:
        held_up = database_held_up(error)
        if held_up is not None:
            logger.warning("proposal %s: %s; tried again shortly", proposal_id, held_up)
            return ApplyResult(proposal_id, Outcome.DEFERRED, held_up)
        if connection_lost(error):  # the intent stays in flight: taken again, the store is read first
            logger.warning("proposal %s: the database connection dropped; trying on a new one", proposal_id)
            connection.close()
            return ApplyResult(proposal_id, Outcome.DEFERRED, "the database connection dropped")
        logger.exception("proposal %s: writing its intent failed", proposal_id)
        return _record_failure(proposal_id, error, worker)


def _finish_locked(sent: _Sent, worker: str, locked: Rows | None = None) -> ApplyResult:
    """Inside the caller's transaction, under the proposal's lock: mark the intent written and the
    proposal applied, with the change's events, follow-ups and callback. `locked`: the answer to the
    proposal's lock statement when the caller sent it already (with others, in one round trip)."""
    if locked is None:
        proposal = _locked_if_approved(sent.proposal_id)
    else:
        proposal = locked_proposal(locked)
        proposal = proposal if proposal is not None and proposal.status == ProposalStatus.APPROVED else None
    if proposal is None:
        return ApplyResult(sent.proposal_id, Outcome.NOT_APPROVED)
    change = change_finish(
        change=sent.change,
        origin=change_origin(proposal, worker),
        state=sent.state,
        along=[mark_applied(proposal, sent.change.id)],
    )
    followups_create_for_change(proposal=proposal, change_id=change.id)
    callback_queue_for(proposal=proposal, event="applied")
    return ApplyResult(sent.proposal_id, Outcome.APPLIED, change_id=change.id)


def _finish_sent(sent: Sequence[_Sent], worker: str, sightings: HeldSightings | None = None) -> dict[int, ApplyResult]:
    """Mark the written intents done, all of them in one transaction (one commit however many there
    are). Should that transaction fail, each is marked in a transaction of its own; one that still
    fails stays in flight, counts a failed attempt and is finished by its retry, which reads the
    store first (it finds the write landed, and does not write again). `sightings`: what the writes
    left of each record, held to be written in the same transaction."""
    if not sent:
        if sightings is not None and sightings.holds_anything:  # what the chunk's reads found, nothing written
            with transaction.atomic():
                sightings.write()
        return {}
    try:
        with transaction.atomic():
            # Every proposal's lock in one round trip, in the chunk's order, then each marked.
            locks = run_together([lock_proposal_statement(item.proposal_id) for item in sent])
            finished = {
                item.proposal_id: _finish_locked(item, worker, rows) for item, rows in zip(sent, locks, strict=True)
            }
            if sightings is not None:
                sightings.write()
            return finished
    except Exception:
        logger.exception("marking %d written intent(s) done together failed; marking each alone", len(sent))
    finished = {}
    for item in sent:
        try:
            with transaction.atomic():
                finished[item.proposal_id] = _finish_locked(item, worker)
        except Exception as error:
            logger.exception("proposal %s: marking its written intent done failed", item.proposal_id)
            finished[item.proposal_id] = _record_failure(item.proposal_id, error, worker)
    if sightings is not None:
        try:
            with transaction.atomic():
                sightings.write()
        except Exception:  # only late: the next read replays Countersign's own Changes since the last one
            logger.exception("the sightings of %d written record(s) were not stored", len(sent))
    return finished


def _store_unreachable(proposal_id: int, error: StoreUnavailable, worker: str) -> ApplyResult:
    """Nothing was written (or, for a write sent, it is not known whether it landed: its intent stays
    in flight). The record type's outage is recorded, and the proposal is tried again later."""
    logger.warning("proposal %s: %s; it stays approved", proposal_id, error)
    record_type = Proposal.objects.filter(pk=proposal_id).values_list("record_type", flat=True).first()
    if record_type is not None:
        store_outage_note(record_type=record_type, store=error.store, reason=error.reason, worker=worker)
    return _record_failure(proposal_id, error, worker)


def _record_failure(proposal_id: int, error: Exception, worker: str) -> ApplyResult:
    result = attempt_failed(proposal_id=proposal_id, error=error, worker=worker)
    if isinstance(error, StoreUnavailable):
        return replace(result, unreachable=error)
    return result


def proposal_apply(*, proposal_id: int, worker: str) -> ApplyResult:
    """Apply one approved proposal in its own transaction: lock it and its record, check the stop
    switches, the stage, the workflow's policy as it stands now, the canary cap and `base`; then
    write, store the Change, append the audit event and mark it applied. All of it, or none of it.
    It is a chunk of one (`proposals_apply`), its attempt counted as a chunk counts them.
    """
    [result] = proposals_apply(proposal_ids=[proposal_id], worker=worker)
    return result


def _apply_one(
    proposal_id: int,
    worker: str,
    known: Known,
    policy: WritePolicy,
    interrupted_by: tuple[type[BaseException], ...] = (),
) -> ApplyResult | _Sent:
    """One proposal of a chunk, up to its done mark: for a store outside the database, the intent
    committed and written to the store answers `_Sent`, for the caller to mark done (`_finish_sent`).

    What the database holds up (a lock or a statement not done in time) is deferred, not counted; a
    connection that drops under the write is replaced and the write tried once more on the new one.
    """
    for last_try in (False, True):
        try:
            with transaction.atomic():
                result = _apply_locked(proposal_id, worker, known, policy)
            if result.intent is None:
                return result
            return _send_intent(proposal_id, worker, result.intent, recovering=result.recovering)
        except interrupted_by:
            raise
        except StoreUnavailable as error:
            return _store_unreachable(proposal_id, error, worker)
        except StopStateUnknown as error:
            logger.error("proposal %s: the stop switches could not be read (%s); nothing written", proposal_id, error)
            return ApplyResult(proposal_id, Outcome.BLOCKED, f"the stop switches could not be read: {error}")
        except Exception as error:
            held_up = database_held_up(error)
            if held_up is not None:
                logger.warning("proposal %s: %s; nothing written, tried again shortly", proposal_id, held_up)
                return ApplyResult(proposal_id, Outcome.DEFERRED, held_up)
            if not last_try and connection_lost(error):
                logger.warning("proposal %s: the database connection dropped; trying on a new one", proposal_id)
                connection.close()
                continue
            logger.exception("proposal %s: applying failed", proposal_id)
            return _record_failure(proposal_id, error, worker)
    raise AssertionError("the last try returns")


def proposals_apply(
    *, proposal_ids: Sequence[int], worker: str, interrupted_by: tuple[type[BaseException], ...] = ()
) -> list[ApplyResult]:
    """Apply a chunk, each proposal in its own transaction; the written intents of a store outside
    the database are marked done together at the end of the chunk, in one transaction.

    The chunk counts an attempt for each proposal as it starts (`attempts.chunk_start`), so a
    worker that stops mid-chunk leaves them counted; what ends without a failure of its own gives
    its attempt back at the end. Once a stop switch, a stage or a canary cap holds one proposal, the
    others it covers in the chunk are left approved without opening a transaction for each, except
    those an override of their own or of their batch may let through. Once a store does not answer,
    the others of its record type in the chunk count a failed attempt without calling it; any that
    is written is checked in its own transaction, whatever the chunk saw before. The workflows'
    policies are read once, at the start of the chunk: a file loaded after that takes effect from
    the next chunk. `interrupted_by`: what ends the chunk where it stands (the task's soft time
    limit): the write in hand rolls back, and it and the rest are deferred, to be queued again.
    """
    ids = list(dict.fromkeys(int(pk) for pk in proposal_ids))
    start = chunk_start(proposal_ids=ids, worker=worker)
    known = start.known
    policies = write_policies(workflow_ids={item.workflow_id for item in known.values()})
    overridden: tuple[set[int], set[int]] | None = None

    def has_own_override(proposal_id: int, batch_id: int | None) -> bool:
        nonlocal overridden
        if overridden is None:  # read once per chunk, and only when something holds
            batch_ids = {item.batch_id for item in known.values() if item.batch_id is not None}
            overridden = overridden_within(proposal_ids=list(known), batch_ids=batch_ids)
        proposals, batches = overridden
        return proposal_id in proposals or (batch_id is not None and batch_id in batches)

    # Pacing between writes, for a system of record that must not be hurried (the demo uses it so a
    # bulk batch runs long enough to stop it by hand). The stop switches are read at every write.
    pause = _settings_number("APPLY_PAUSE_SECONDS")
    written = False
    held_everything: ApplyResult | None = None
    held_workflows: dict[int, ApplyResult] = {}
    held_batches: dict[int, ApplyResult] = {}
    held_prompts: dict[tuple[int, str], ApplyResult] = {}
    unreachable: dict[str, StoreUnavailable] = {}
    results: list[ApplyResult | _Sent] = []
    # Intents stored ahead, with the switches engaged when they were: written one by one below.
    ahead: dict[int, ApplyResult] = {}
    seen: frozenset[int] = frozenset()
    outside = {
        record_type: not get_store(record_type).in_default_database
        for record_type in {item.record_type for item in known.values()}
    }

    def may_go_ahead(proposal_id: int) -> bool:
        """On a store outside the database, and nothing known yet keeps it from being tried."""
        item = known.get(proposal_id)
        return (
            item is not None
            and proposal_id not in start.settled
            and outside[item.record_type]
            and item.record_type not in unreachable
            and not (
                held_everything
                or held_workflows.get(item.workflow_id)
                or held_batches.get(item.batch_id or 0)
                or held_prompts.get((item.workflow_id, item.prompt_version))
            )
        )

    # The sightings of the chunk's writes are stored with their done marks, not one commit each.
    with sightings_held() as sightings:
        try:
            for index, proposal_id in enumerate(ids):
                if proposal_id in start.settled:
                    results.append(start.settled[proposal_id])
                    continue
                if proposal_id not in known:
                    results.append(ApplyResult(proposal_id, Outcome.NOT_APPROVED))
                    continue
                record_type = known[proposal_id].record_type
                if record_type in unreachable:  # its store did not answer the last one: no call, a failed attempt
                    _withdraw_ahead(ahead.pop(proposal_id, None))
                    results.append(_record_failure(proposal_id, unreachable[record_type], worker))
                    continue
                workflow_id, batch_id = known[proposal_id].workflow_id, known[proposal_id].batch_id
                prompt = (workflow_id, known[proposal_id].prompt_version)
                held = (
                    held_everything
                    or held_workflows.get(workflow_id)
                    or held_batches.get(batch_id or 0)
                    or held_prompts.get(prompt)
                )
                if held and not (held.liftable and has_own_override(proposal_id, batch_id)):
                    _withdraw_ahead(ahead.pop(proposal_id, None))
                    results.append(ApplyResult(proposal_id, held.outcome, held.detail))
                    continue
                if proposal_id not in ahead and may_go_ahead(proposal_id):
                    run = list(itertools.takewhile(may_go_ahead, ids[index:]))
                    stored = _intend_ahead(run, worker, known, policies, interrupted_by) if len(run) > 1 else None
                    if stored is not None:
                        ahead, seen = stored
                if pause and written:
                    time.sleep(pause)
                planned = ahead.pop(proposal_id, None)
                if planned is None:
                    outcome = _apply_one(proposal_id, worker, known[proposal_id], policies[workflow_id], interrupted_by)
                elif planned.intent is None:
                    outcome = planned
                else:
                    outcome = _send_ahead(proposal_id, worker, known[proposal_id], planned, planned.intent, seen)
                results.append(outcome)
                if isinstance(outcome, _Sent):  # written to its store: marked done with the chunk's others
                    written = True
                    continue
                result = outcome
                if result.unreachable is not None:
                    unreachable[record_type] = result.unreachable
                written = written or result.outcome == Outcome.APPLIED
                if result.outcome == Outcome.BLOCKED or result.stop_scope == StopScope.GLOBAL:
                    held_everything = result
                elif result.stop_scope == StopScope.BATCH and batch_id:
                    held_batches[batch_id] = result
                elif result.prompt_hold:
                    held_prompts[prompt] = result
                elif result.outcome in (Outcome.STOPPED, Outcome.WAITING):
                    held_workflows[workflow_id] = result
        except interrupted_by:
            for planned in ahead.values():  # stored, not written: the next attempt reads the store first
                results.append(ApplyResult(planned.proposal_id, Outcome.DEFERRED, INTERRUPTED))
            done = {item.proposal_id for item in results}
            left = [pk for pk in ids if pk not in done]
            logger.warning("the chunk was interrupted; %d proposal(s) left approved, to be queued again", len(left))
            results += [ApplyResult(pk, Outcome.DEFERRED, INTERRUPTED) for pk in left]
        finished = _finish_sent([item for item in results if isinstance(item, _Sent)], worker, sightings)
    final = [finished[item.proposal_id] if isinstance(item, _Sent) else item for item in results]
    chunk_give_back(results=final, counted=known)
    return final
