"""Undoing changes: one change at once, or many as a job (a batch, a workflow since a time, a prompt version).

An undo puts back the exact values a change replaced where the record still holds what it wrote,
and reports a conflict everywhere else (see records.services.revert.changes_revert). Here it also cancels
the change's follow-ups that have not run, lists those already sent as not retractable, and moves
the proposal to `reverted`. A bulk undo is fixed (which changes, in which order) when it starts,
runs in a worker in chunks, reports its progress and can be cancelled between chunks.
"""

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from approvals import reasons
from approvals.applying.callbacks import callback_queue_for
from approvals.applying.followups import followups_cancel_for_changes
from approvals.jobs import undo_job_queue
from approvals.models import (
    FollowUp,
    Proposal,
    ProposalStatus,
    StopScope,
    StopSwitch,
    UndoItemOutcome,
    UndoJob,
    UndoJobItem,
    UndoJobStatus,
    UndoScope,
)
from approvals.notices import notice_record
from approvals.stops.breaker import breaker_check
from approvals.stops.services import stop_engage, stop_release_for_undo_job
from approvals.undo.rights import undo_rights_for_user
from approvals.undo.selectors import UndoSelection, undo_candidates
from audit.services import Actor, EventData, audit_record, audit_record_many
from core.errors import InvalidTransition, NotFound
from core.updates import update_rows
from records.models import Change, ChangeAction
from records.services.revert import RevertConflict, RevertOutcome, RevertPart, RevertResult, changes_revert

logger = logging.getLogger(__name__)


def _chunk_size() -> int:
    return max(1, int(settings.COUNTERSIGN["UNDO_CHUNK_SIZE"]))


def _check_rights(user: User | None, workflow_slugs: Iterable[str]) -> None:
    """A person (`user`) needs the right to undo every workflow involved; the CLI run without one does not."""
    if user is not None:
        undo_rights_for_user(user=user).check_undo(workflow_slugs)


# Settling what an undo means beyond the record: proposals and follow-ups ---------------------------


@dataclass
class Settlement:
    cancelled: dict[UUID, list[FollowUp]] = field(default_factory=dict)
    not_retractable: dict[UUID, list[FollowUp]] = field(default_factory=dict)
    proposal_status: dict[UUID, str] = field(default_factory=dict)


def _original(change: Change) -> tuple[Change, bool]:
    """The change an undo chain starts from, and whether it is in force once `change` is undone.

    Undoing the change itself undoes it; undoing its undo puts it back; and so on, alternately.
    """
    root, depth = change, 0
    while root.action == ChangeAction.REVERT and root.reverts_id is not None:
        root = Change.objects.get(pk=root.reverts_id)
        depth += 1
    return root, depth % 2 == 1


def _settle(
    results: Sequence[RevertResult], proposals: dict[int, Proposal], *, actor: Actor, reason: str
) -> Settlement:
    """For each change undone: the proposal follows its change (reverted, or applied again when an undo
    is undone), and the follow-ups of an undone change that are still held are cancelled; the circuit
    breaker judges each prompt version undone. In the caller's transaction, with the proposals already locked."""
    settlement = Settlement()
    undone_originals: dict[UUID, Change] = {}
    now = timezone.now()
    events: list[EventData] = []
    changed: dict[str, list[Proposal]] = {ProposalStatus.REVERTED: [], ProposalStatus.APPLIED: []}
    for result in results:
        if result.outcome != RevertOutcome.REVERTED:
            continue
        original, in_force = (
            (result.change, False) if result.change.action != ChangeAction.REVERT else _original(result.change)
        )
        if not in_force:
            undone_originals[original.id] = original
        proposal = proposals.get(original.proposal_id) if original.proposal_id is not None else None
        if proposal is None or proposal.change_id != original.id:
            continue
        status = ProposalStatus.APPLIED if in_force else ProposalStatus.REVERTED
        if proposal.status == status or proposal.status not in (ProposalStatus.APPLIED, ProposalStatus.REVERTED):
            continue
        proposal.status = status
        proposal.updated_at = now
        changed[status].append(proposal)
        settlement.proposal_status[result.change.id] = status
        events.append(
            EventData(
                action="proposal.reverted" if status == ProposalStatus.REVERTED else "proposal.reapplied",
                actor=actor,
                change_id=result.revert.id if result.revert else None,
                reason=reason,
                details={"change": str(original.id)},
                **proposal.trail_fields(),
            )
        )
    for new_status, group in changed.items():
        if group:
            Proposal.objects.filter(pk__in=[p.pk for p in group]).update(status=new_status, updated_at=now)
            event = "reverted" if new_status == ProposalStatus.REVERTED else "applied"
            for proposal in group:
                callback_queue_for(proposal=proposal, event=event)
    audit_record_many(events)
    # An undo moves its prompt version's undo rate, which the circuit breaker judges.
    undone = {(p.workflow_id, p.prompt_version): p.workflow for p in changed[ProposalStatus.REVERTED]}
    for (_, prompt_version), workflow in sorted(undone.items(), key=lambda item: item[0]):
        breaker_check(workflow=workflow, prompt_version=prompt_version)
    followups = followups_cancel_for_changes(
        change_ids=list(undone_originals), actor=actor, reason=reason or "the change was undone"
    )
    settlement.cancelled, settlement.not_retractable = followups.cancelled, followups.not_retractable
    return settlement


def _lock_proposals(changes: Iterable[Change]) -> dict[int, Proposal]:
    ids = sorted({change.proposal_id for change in changes if change.proposal_id is not None})
    if not ids:
        return {}
    return {
        proposal.pk: proposal
        for proposal in Proposal.objects.select_for_update(of=("self",))
        .select_related("workflow", "service_account")
        .filter(pk__in=ids)
        .order_by("pk")
    }


# One change --------------------------------------------------------------------------------------


@dataclass
class UndoResult:
    change: Change
    revert: Change
    left: list[RevertPart]
    cancelled: list[FollowUp]
    not_retractable: list[FollowUp]
    proposal_status: str = ""


def undo_change(
    *,
    change: Change,
    actor: Actor,
    user: User | None = None,
    fields: Sequence[str] | None = None,
    reason: str = "",
) -> UndoResult:
    """Undo one change now (see records.services.revert.change_revert), as `user` when a person asks.

    Raises NotAllowed without the right, RevertConflict (nothing written) when the record changed
    since, InvalidTransition when it was already undone.
    """
    _check_rights(user, [change.workflow_slug])
    original, _ = _original(change) if change.action == ChangeAction.REVERT else (change, False)
    with transaction.atomic():
        proposals = _lock_proposals([original])
        [result] = changes_revert(
            changes=[change],
            actor=actor,
            applied_by=actor.label,
            reason=reason,
            fields={change.id: list(fields)} if fields is not None else None,
        )
        settlement = _settle([result], proposals, actor=actor, reason=reason)
    if result.outcome == RevertOutcome.CONFLICT:
        raise RevertConflict(result)
    if result.outcome == RevertOutcome.ALREADY_UNDONE:
        raise InvalidTransition(f"change {change.id} was already undone by change {result.undone_by}")
    if result.revert is None:
        raise NotFound(result.detail)
    return UndoResult(
        change=change,
        revert=result.revert,
        left=result.left,
        cancelled=settlement.cancelled.get(original.id, []),
        not_retractable=settlement.not_retractable.get(original.id, []),
        proposal_status=settlement.proposal_status.get(change.id, ""),
    )


# Many changes, as a job ---------------------------------------------------------------------------


def _batch_stop(job_batch: Any, *, reason: str, actor: Actor, user: User | None) -> tuple[StopSwitch, bool]:
    """The batch's own stop switch, and whether the undo engaged it now: the one already engaged (by
    someone else, who releases it), or a new one engaged now."""
    engaged = StopSwitch.objects.filter(target=f"batch:{job_batch.pk}", released_at__isnull=True).first()
    if engaged is not None:
        return engaged, False
    try:
        switch = stop_engage(
            scope=StopScope.BATCH,
            batch=job_batch,
            reason=f"undoing the batch: {reason}",
            actor=actor,
            user=user,
        )
    except InvalidTransition:  # engaged by someone else a moment ago
        return StopSwitch.objects.get(target=f"batch:{job_batch.pk}", released_at__isnull=True), False
    return switch, True


def undo_job_start(
    *, selection: UndoSelection, actor: Actor, user: User | None = None, reason: str, queue: bool = True
) -> UndoJob:
    """Start a bulk undo: the changes still in force are fixed now, newest first, and queued for a worker.

    A batch is stopped first (its own stop switch), and the applies already in flight for it are
    waited for, so nothing new lands while the undo runs. A switch the undo engaged is the job's
    `stop`, released when the job ends if nothing of the batch is left for it to hold (see
    `stop_release_for_undo_job`); one already engaged stays for whoever engaged it to release.
    """
    reason = reasons.UNDO.clean(reason)
    first = undo_candidates(selection=selection, ids_only=True)
    if not first.changes:
        detail = f" ({first.already_undone} already undone)" if first.already_undone else ""
        raise InvalidTransition(f"nothing to undo in {selection.describe()}{detail}")
    _check_rights(user, {change.workflow_slug for change in first.changes})
    stop, engaged_now = None, False
    if selection.scope == UndoScope.BATCH and selection.batch is not None:
        stop, engaged_now = _batch_stop(selection.batch, reason=reason, actor=actor, user=user)
    with transaction.atomic():
        if selection.batch is not None:
            # An apply in flight holds its proposal's row: wait for those, so their changes are in the plan.
            list(
                Proposal.objects.select_for_update(of=("self",))
                .filter(batch=selection.batch, status=ProposalStatus.APPROVED)
                .values_list("pk", flat=True)
            )
        candidates = undo_candidates(selection=selection, ids_only=True)
        _check_rights(user, {change.workflow_slug for change in candidates.changes})
        job = UndoJob.objects.create(
            scope=selection.scope,
            workflow=selection.workflow or (selection.batch.workflow if selection.batch else None),
            batch=selection.batch,
            prompt_version=selection.prompt_version,
            since=selection.since,
            until=selection.until,
            reason=reason,
            total=len(candidates.changes),
            stop=stop if engaged_now else None,
            requested_by=user,
            requested_by_label=actor.label,
        )
        UndoJobItem.objects.bulk_create(
            (
                UndoJobItem(
                    job=job,
                    position=position,
                    change_id=change.id,
                    record_type=change.record_type,
                    record_id=change.record_id,
                )
                for position, change in enumerate(candidates.changes)
            ),
            batch_size=1000,
        )
        audit_record(
            action="undo.started",
            actor=actor,
            batch_id=selection.batch.pk if selection.batch else None,
            workflow_slug=job.workflow.slug if job.workflow else "",
            prompt_version=selection.prompt_version,
            reason=reason,
            details={
                "undo_job": job.pk,
                "scope": selection.scope,
                "covers": selection.describe(),
                "changes": job.total,
                "already_undone": candidates.already_undone,
                "stop_id": stop.pk if stop else None,
            },
        )
        if queue:
            undo_job_queue(job_id=job.pk)
    return job


def _job_actor(job: UndoJob) -> Actor:
    return Actor.user(job.requested_by) if job.requested_by else Actor.system(job.requested_by_label)


def _finish(job: UndoJob, status: str, actor: Actor) -> None:
    job.status = status
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "finished_at"])
    audit_record(
        action="undo.finished" if status == UndoJobStatus.DONE else "undo.cancelled",
        actor=actor,
        batch_id=job.batch_id,
        workflow_slug=job.workflow.slug if job.workflow else "",
        prompt_version=job.prompt_version,
        reason=job.reason,
        details={
            "undo_job": job.pk,
            "total": job.total,
            "done": job.done,
            "reverted": job.reverted,
            "conflicts": job.conflicts,
            "skipped": job.skipped,
            "failed": job.failed,
            "followups_cancelled": job.followups_cancelled,
            "followups_not_retractable": job.followups_not_retractable,
            "cancelled_by": job.cancel_requested_by_label,
        },
    )
    ended = "finished" if status == UndoJobStatus.DONE else "was cancelled"
    notice_record(
        event="undo_finished",
        workflow=job.workflow or (job.batch.workflow if job.batch is not None else None),
        subject=f"Undo job {job.pk} {ended}: {job.reverted} of {job.total} changes undone",
        body=f"Undo job {job.pk} ({job.reason}) {ended}: {job.reverted} undone, {job.conflicts} in conflict "
        f"(a later change kept), {job.skipped} skipped, {job.failed} failed, of {job.total}.",
        dedupe_key=f"undo-finished:{job.pk}",
    )
    if job.stop_id is not None and job.stop is not None:
        stop_release_for_undo_job(switch=job.stop, job_id=job.pk, actor=actor, user=job.requested_by)


def _record_outcomes(
    job: UndoJob, items: list[UndoJobItem], results: dict[UUID, RevertResult], errors: dict[UUID, str]
) -> None:
    for item in items:
        result = results.get(item.change_id)
        if item.change_id in errors or result is None:
            item.outcome = UndoItemOutcome.FAILED
            item.detail = {"error": errors.get(item.change_id, "the change no longer exists")}
            job.failed += 1
        elif result.outcome == RevertOutcome.UNREACHABLE:
            item.outcome = UndoItemOutcome.FAILED
            item.detail = {"error": result.detail}
            job.failed += 1
        elif result.outcome == RevertOutcome.REVERTED:
            item.outcome = UndoItemOutcome.REVERTED
            job.reverted += 1
        elif result.outcome == RevertOutcome.ALREADY_UNDONE:
            item.outcome = UndoItemOutcome.SKIPPED
            item.detail = {"undone_by": str(result.undone_by)}
            job.skipped += 1
        else:
            item.outcome = UndoItemOutcome.CONFLICT
            item.detail = {"detail": result.detail, "conflicts": [part.as_dict() for part in result.conflicts]}
            job.conflicts += 1
    job.done += len(items)
    reverted = [item.pk for item in items if item.outcome == UndoItemOutcome.REVERTED]
    if reverted:
        UndoJobItem.objects.filter(pk__in=reverted).update(outcome=UndoItemOutcome.REVERTED)
    update_rows([item for item in items if item.outcome != UndoItemOutcome.REVERTED], ["outcome", "detail"])


def _run_chunk(job: UndoJob, items: list[UndoJobItem], actor: Actor) -> None:
    found = Change.objects.in_bulk([item.change_id for item in items])
    changes = [found[item.change_id] for item in items if item.change_id in found]
    applied_by = f"{job.requested_by_label} (undo job {job.pk})"[:200]
    proposals = _lock_proposals(changes)
    results: dict[UUID, RevertResult] = {}
    errors: dict[UUID, str] = {}
    settlements: list[Settlement] = []
    try:
        with transaction.atomic():
            done = changes_revert(changes=changes, actor=actor, applied_by=applied_by, reason=job.reason)
            settlements.append(_settle(done, proposals, actor=actor, reason=job.reason))
        results = {result.change.id: result for result in done}
    except Exception:  # one bad change must not hold up the rest: go through this chunk one by one
        logger.exception("undo job %s: a chunk failed; undoing its changes one by one", job.pk)
        for change in changes:
            try:
                with transaction.atomic():
                    [result] = changes_revert(changes=[change], actor=actor, applied_by=applied_by, reason=job.reason)
                    settlements.append(_settle([result], proposals, actor=actor, reason=job.reason))
                results[change.id] = result
            except Exception as error:
                errors[change.id] = f"{type(error).__name__}: {error}"[:2000]
    for settlement in settlements:
        job.followups_cancelled += sum(len(rows) for rows in settlement.cancelled.values())
        job.followups_not_retractable += sum(len(rows) for rows in settlement.not_retractable.values())
    _record_outcomes(job, items, results, errors)


COUNTERS = [
    "status",
    "started_at",
    "progressed_at",
    "worker",
    "done",
    "reverted",
    "conflicts",
    "skipped",
    "failed",
    "followups_cancelled",
    "followups_not_retractable",
]


def undo_job_run(
    *,
    job_id: int,
    worker: str,
    chunk_size: int | None = None,
    on_progress: Callable[[UndoJob], None] | None = None,
) -> UndoJob:
    """Run a bulk undo to its end, a chunk per transaction, newest change first.

    Each chunk locks the job, so a second worker given the same job takes turns with the first and
    nothing is undone twice; a worker that dies loses only its chunk in flight, which the next run
    picks up. A cancel takes effect between chunks: what is undone stays undone.
    """
    size = chunk_size or _chunk_size()
    while True:
        with transaction.atomic():
            job = (
                UndoJob.objects.select_for_update(of=("self",))
                .select_related("workflow", "requested_by")
                .get(pk=job_id)
            )
            if job.finished:
                return job
            actor = _job_actor(job)
            if job.cancel_requested_at is not None:
                _finish(job, UndoJobStatus.CANCELLED, actor)
                return job
            if job.status == UndoJobStatus.QUEUED:
                job.status, job.started_at = UndoJobStatus.RUNNING, timezone.now()
            job.worker, job.progressed_at = worker, timezone.now()
            items = list(job.items.filter(outcome=UndoItemOutcome.PENDING).order_by("position")[:size])
            if not items:
                job.save(update_fields=COUNTERS)
                _finish(job, UndoJobStatus.DONE, actor)
                return job
            _run_chunk(job, items, actor)
            job.save(update_fields=COUNTERS)
        if on_progress is not None:
            on_progress(job)


def undo_jobs_sweep(*, stale_seconds: float | None = None) -> list[int]:
    """Queue again the jobs that have made no progress for a while (a lost message, a killed worker).

    Running one twice at once does no harm: every chunk locks the job, so two workers take turns.
    """
    if stale_seconds is None:
        stale_seconds = float(settings.COUNTERSIGN["UNDO_STALE_AFTER_SECONDS"])
    cutoff = timezone.now() - timedelta(seconds=stale_seconds)
    stale = UndoJob.objects.filter(status__in=[UndoJobStatus.QUEUED, UndoJobStatus.RUNNING]).filter(
        Q(progressed_at__lt=cutoff) | Q(progressed_at__isnull=True, created_at__lt=cutoff)
    )
    ids = list(stale.order_by("pk").values_list("pk", flat=True))
    for job_id in ids:
        logger.info("undo job %s made no progress since %s; queueing it again", job_id, cutoff)
        undo_job_queue(job_id=job_id)
    return ids


def undo_job_cancel(*, job: UndoJob, actor: Actor, user: User | None = None) -> UndoJob:
    """Ask a bulk undo to stop. A queued job ends now; a running one ends after the chunk in flight."""
    if user is not None:
        undo_rights_for_user(user=user).check_cancel(job=job, user=user)
    with transaction.atomic():
        job = UndoJob.objects.select_for_update(of=("self",)).select_related("workflow").get(pk=job.pk)
        if job.finished:
            raise InvalidTransition(f"undo job {job.pk} has already {'finished' if job.status == 'done' else 'ended'}")
        if job.cancel_requested_at is None:
            job.cancel_requested_at = timezone.now()
            job.cancel_requested_by_label = actor.label
            job.save(update_fields=["cancel_requested_at", "cancel_requested_by_label"])
        if job.status == UndoJobStatus.QUEUED:
            _finish(job, UndoJobStatus.CANCELLED, actor)
    return job
