"""How many times applying a proposal was tried, and when it is given up.

A chunk counts an attempt for each approved proposal it starts, before it writes any of them, in the
statement that reads them (`chunk_start`). An attempt stands when applying fails (it raised, or its
store did not answer) and when the worker process ends in the middle of it without a word (a crash,
the out-of-memory killer, a kill, the task's hard time limit): the message comes back and the count
is there. Every other end gives it back: applied, a conflict, held by a stop switch, a stage or the
canary cap, and held up by the database rather than by the proposal (a lock not given or a statement
not done in time, `lock_timeout` and `statement_timeout` on the worker's sessions; a connection that
dropped under it).

A chunk of several that finds a proposal started before and not finished queues that one again in a
message of its own, so a proposal that ends its worker stops only itself, and only it keeps counting.
After APPLY_MAX_ATTEMPTS attempts that stood, a proposal ends `failed` with why, on the trail and
to its pipeline, except one whose write to a store outside the database was sent and never
answered: only the store can say whether it landed, so it waits until the store answers.
"""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from approvals.applying.callbacks import callback_queue_for
from approvals.applying.locking import Known, proposals_give_back, proposals_start
from approvals.applying.results import ApplyResult, Outcome
from approvals.jobs import apply_queue
from approvals.models import Proposal, ProposalStatus
from audit.services import Actor, audit_record
from records.services.intents import change_in_flight

logger = logging.getLogger(__name__)

# What the database says when it gives up on a statement of ours before it was done (SQLSTATE).
_HELD_UP = {
    "55P03": "a lock it needed was held by another transaction longer than the worker waits (lock_timeout)",
    "57014": "a statement was cancelled before it finished (statement_timeout)",
}
HELD_ELSEWHERE = "another transaction holds the proposal; it is tried again shortly"
SET_APART = "a chunk it was in did not finish; it is tried again in a message of its own"


def _max_attempts() -> int:
    return int(settings.COUNTERSIGN["APPLY_MAX_ATTEMPTS"])


@dataclass(frozen=True)
class ChunkStart:
    """What a chunk attempts itself (`known`, each with its attempt counted), and what it settled at
    its start without attempting it (`settled`)."""

    known: dict[int, Known]
    settled: dict[int, ApplyResult]


def chunk_start(*, proposal_ids: Sequence[int], worker: str) -> ChunkStart:
    """Count an attempt for each approved proposal of the chunk, in one statement, and set apart
    what the chunk does not attempt: a proposal another transaction holds (deferred, not counted),
    one whose attempts are used up by workers that stopped (given up), and, in a chunk of several,
    one started before and not finished (queued alone, its count given back)."""
    started = proposals_start(proposal_ids)
    settled: dict[int, ApplyResult] = {}
    held = [pk for pk in proposal_ids if pk not in started]
    if held:  # left out as no longer approved, or (on PostgreSQL) as held by another transaction
        for pk in Proposal.objects.filter(pk__in=held, status=ProposalStatus.APPROVED).values_list("pk", flat=True):
            settled[pk] = ApplyResult(pk, Outcome.DEFERRED, HELD_ELSEWHERE)
    for pk, item in started.items():
        if item.attempts > _max_attempts():
            given_up = _give_up_stopped(proposal_id=pk, attempts=item.attempts - 1, worker=worker)
            if given_up is not None:
                settled[pk] = given_up
    left = [pk for pk in proposal_ids if pk in started and pk not in settled]  # in the chunk's order
    again = [pk for pk in left if started[pk].attempts > 1] if len(left) > 1 else []
    if again:
        logger.warning("%d proposal(s) started before and not finished: each queued alone", len(again))
        proposals_give_back(again)
        for pk in again:
            apply_queue(proposal_ids=[pk])
            settled[pk] = ApplyResult(pk, Outcome.ISOLATED, SET_APART)
    return ChunkStart({pk: started[pk].known for pk in left if pk not in settled}, settled)


def chunk_give_back(*, results: Iterable[ApplyResult], counted: Iterable[int]) -> None:
    """Give back, in one statement, the attempts of the chunk's proposals (`counted` at its start)
    that ended without a failure of their own; an applied one gave its back as it was marked."""
    counted = set(counted)
    proposals_give_back(
        [result.proposal_id for result in results if result.proposal_id in counted and result.gives_attempt_back]
    )


def _locked_approved(proposal_id: int) -> Proposal | None:
    proposal = (
        Proposal.objects.select_for_update(of=("self",))
        .select_related("workflow", "service_account")
        .filter(pk=proposal_id)
        .first()
    )
    return proposal if proposal is not None and proposal.status == ProposalStatus.APPROVED else None


def _give_up(proposal: Proposal, *, reason: str, attempts: int, worker: str) -> None:
    """Inside the caller's transaction, under the proposal's lock: it ends `failed` with why."""
    proposal.status = ProposalStatus.FAILED
    proposal.apply_attempts = attempts
    proposal.last_error = reason
    proposal.updated_at = timezone.now()
    proposal.save(update_fields=["status", "apply_attempts", "last_error", "updated_at"])
    audit_record(
        action="proposal.failed",
        actor=Actor.worker(worker),
        record_type=proposal.record_type,
        record_id=proposal.record_id,
        proposal_id=proposal.pk,
        batch_id=proposal.batch_id,
        workflow_slug=proposal.workflow.slug,
        prompt_version=proposal.prompt_version,
        reason=reason,
        details={"attempts": attempts},
    )
    callback_queue_for(proposal=proposal, event="failed")


def _give_up_stopped(*, proposal_id: int, attempts: int, worker: str) -> ApplyResult | None:
    """A proposal started `attempts` times, the last at least ended by its worker stopping (a failure
    that raised on the last allowed attempt gives up there): it ends `failed` without being tried
    again. None when it is still approved with a write to its store in flight: that one is tried."""
    with transaction.atomic():
        proposal = _locked_approved(proposal_id)
        if proposal is None:
            return ApplyResult(proposal_id, Outcome.NOT_APPROVED)
        if change_in_flight(proposal_id=proposal_id) is not None:
            return None
        reason = (
            f"given up after {attempts} attempts: the worker applying it stopped before it finished "
            "(the process ended: a crash, out of memory, or killed)"
        )
        if proposal.last_error:
            reason += f"; the last error: {proposal.last_error}"
        _give_up(proposal, reason=reason[:2000], attempts=attempts, worker=worker)
    logger.error("proposal %s: %s", proposal_id, reason)
    return ApplyResult(proposal_id, Outcome.FAILED, reason, attempts=attempts)


def attempt_failed(*, proposal_id: int, error: Exception, worker: str) -> ApplyResult:
    """Applying raised: the attempt counted at the chunk's start stands, with the error kept. At
    APPLY_MAX_ATTEMPTS the proposal ends `failed`, unless a write it sent to its store was never
    answered: only reading the store can tell whether it landed, so it stays approved until then."""
    message = f"{type(error).__name__}: {error}"[:2000]
    with transaction.atomic():
        proposal = _locked_approved(proposal_id)
        if proposal is None:
            return ApplyResult(proposal_id, Outcome.NOT_APPROVED)
        attempts = max(proposal.apply_attempts, 1)
        if attempts >= _max_attempts() and change_in_flight(proposal_id=proposal.pk) is None:
            _give_up(proposal, reason=message, attempts=attempts, worker=worker)
            return ApplyResult(proposal_id, Outcome.FAILED, message, attempts=attempts)
        proposal.last_error = message
        proposal.updated_at = timezone.now()
        proposal.save(update_fields=["last_error", "updated_at"])
    return ApplyResult(proposal_id, Outcome.RETRY, message, attempts=attempts)


def database_held_up(error: BaseException) -> str | None:
    """Why the database gave up on a statement of the write before it was done (a lock another
    transaction held past `lock_timeout`, a statement past `statement_timeout`), or None. Nothing
    was written, and it is no fault of the proposal's."""
    for raised in (error, error.__cause__):
        reason = _HELD_UP.get(str(getattr(raised, "sqlstate", "") or ""))
        if reason is not None:
            return reason
    return None


def connection_lost(error: BaseException) -> bool:
    """Whether `error` came with the connection to the database gone: the server ended the session
    (an administrator, a restart, a failover: SQLSTATE 57P01-57P03, or class 08), or the driver lost
    it without a word from the server (an error with no SQLSTATE). Nothing of the transaction it was
    in committed, unless the commit itself was under way, which the next try finds by the proposal's
    status. Asked of the error, not the connection: leaving the failed transaction opens a new one."""
    if not isinstance(error, OperationalError | InterfaceError):
        return False
    cause = error.__cause__
    if not isinstance(cause, psycopg.Error):
        return False
    sqlstate = cause.sqlstate or ""
    return not sqlstate or sqlstate.startswith(("08", "57P0"))
