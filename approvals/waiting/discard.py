"""Discarding a batch: a person on its page, or its pipeline through the API, gives up on what of
it is still undecided. Its pending proposals become `cancelled`, each with `proposal.cancelled` on
the trail and its pipeline's callback, and the batch takes no more proposals. What was decided
stays as it is: written changes are undone with Undo, approved ones not yet written are held by
stopping the batch, conflicts are decided on their screens.

Discarding twice does no harm: the second time cancels what is still pending (a proposal that came
in while the first ran), records nothing else and says the batch had been discarded already.
"""

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from approvals import reasons
from approvals.applying.callbacks import callback_queue_for
from approvals.models import Batch, Proposal, ProposalStatus, ServiceAccount
from approvals.waiting.rights import discard_refusal
from audit.services import Actor, EventData, audit_record_many
from core.confirmations import Confirmation
from core.errors import NotAllowed, NotFound


@dataclass(frozen=True)
class BatchStanding:
    """How many of a batch's proposals are in each state a discard cares about."""

    pending: int  # a discard cancels these
    applied: int  # written and not undone: untouched, Undo takes them back
    to_write: int  # approved, not written yet: untouched, written unless the batch is stopped
    conflict: int  # waiting for a person after the record changed: untouched

    @classmethod
    def of(cls, by_status: dict[str, int]) -> "BatchStanding":
        return cls(
            pending=by_status.get(ProposalStatus.PENDING, 0),
            applied=by_status.get(ProposalStatus.APPLIED, 0),
            to_write=by_status.get(ProposalStatus.APPROVED, 0),
            conflict=by_status.get(ProposalStatus.CONFLICT, 0),
        )


def _standing(batch_id: int) -> BatchStanding:
    rows = Proposal.objects.filter(batch_id=batch_id).order_by().values_list("status").annotate(count=Count("id"))
    return BatchStanding.of(dict(rows))


@dataclass(frozen=True)
class Discarded:
    """What one discard did, and what of the batch it left as it was."""

    batch: Batch
    cancelled: int  # by this discard
    already: bool  # the batch had been discarded before
    standing: BatchStanding  # after this discard


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def discard_confirmation(*, batch: Batch, standing: BatchStanding) -> Confirmation:
    """The question discarding `batch` asks first. The answer names how many pending proposals the
    page showed, so a discard confirmed for 30 is asked again when 31 are pending."""
    untouched = []
    if standing.applied:
        untouched.append(f"{_plural(standing.applied, 'applied change')} stay (Undo takes them back)")
    if standing.to_write:
        untouched.append(f"{_plural(standing.to_write, 'approved proposal')} will still be written unless you stop it")
    detail = "Each is cancelled and its pipeline told; the batch takes no more proposals."
    if untouched:
        detail += f" Of what was decided, {'; '.join(untouched)}."
    if standing.pending:
        question = (
            f"Discard batch {batch.pk} ({batch.name}) and cancel its {_plural(standing.pending, 'pending proposal')}?"
        )
    else:
        question = f"Discard batch {batch.pk} ({batch.name})? None of its proposals is pending."
    return Confirmation(
        question=question,
        detail=detail,
        verb=f"Discard batch {batch.pk}",
        answer=str(standing.pending),
    )


def discard_standing(*, batch: Batch) -> BatchStanding:
    """What a discard of `batch` would cancel, and what it would leave. One query."""
    return _standing(batch.pk)


def batch_discard(*, batch: Batch, reason: str, actor: Actor, user: User | None = None) -> Discarded:
    """Cancel the batch's pending proposals and mark it discarded, in one transaction.

    The batch's row is locked first, so two discards run one after the other. Each pending proposal
    is locked before it is cancelled: one that a reviewer is deciding at that moment is waited for,
    and once decided it is left alone.
    """
    reason = reasons.DISCARD.clean(reason)
    with transaction.atomic():
        batch = Batch.objects.select_for_update(of=("self",)).select_related("workflow").get(pk=batch.pk)
        pending = list(
            Proposal.objects.select_for_update(of=("self",))
            .filter(batch_id=batch.pk, status=ProposalStatus.PENDING)
            .select_related("workflow", "service_account")
            .order_by("created_at", "id")
        )
        now = timezone.now()
        if pending:
            Proposal.objects.filter(pk__in=[proposal.pk for proposal in pending]).update(
                status=ProposalStatus.CANCELLED,
                updated_at=now,
                revision=F("revision") + 1,
                claimed_by=None,
                claimed_until=None,
            )
        standing = _standing(batch.pk)
        already = batch.discarded_at is not None
        events = []
        if not already:
            batch.discarded_at, batch.discarded_by_label = now, actor.label
            batch.discarded_by_user, batch.discard_reason = user, reason
            events.append(
                EventData(
                    action="batch.discarded",
                    actor=actor,
                    batch_id=batch.pk,
                    workflow_slug=batch.workflow.slug,
                    reason=reason,
                    details={
                        "cancelled": len(pending),
                        "applied": standing.applied,
                        "to_write": standing.to_write,
                        "conflict": standing.conflict,
                    },
                )
            )
        if pending or not already:
            batch.discard_cancelled += len(pending)
            batch.save(
                update_fields=[
                    "discarded_at", "discarded_by_label", "discarded_by_user", "discard_reason", "discard_cancelled",
                ]
            )  # fmt: skip
        events.extend(
            EventData(
                action="proposal.cancelled",
                actor=actor,
                reason=reason,
                details={"discarded_batch": batch.pk},
                **proposal.trail_fields(),
            )
            for proposal in pending
        )
        audit_record_many(events)
        for proposal in pending:
            proposal.status = ProposalStatus.CANCELLED
            callback_queue_for(proposal=proposal, event="cancelled")
    return Discarded(batch=batch, cancelled=len(pending), already=already, standing=standing)


def batch_discard_by_person(*, batch: Batch, user: User, reason: str) -> Discarded:
    """A person discards a batch; only those who decide its workflow's proposals may."""
    if refusal := discard_refusal(user=user, batch=batch):
        raise NotAllowed(refusal)
    return batch_discard(batch=batch, reason=reason, actor=Actor.user(user), user=user)


def batch_discard_by_pipeline(*, account: ServiceAccount, batch: Batch, reason: str) -> Discarded:
    """A pipeline discards a batch of its own workflow; another workflow's batch is as good as absent."""
    if batch.workflow_id != account.workflow_id:
        raise NotFound(f"no batch {batch.pk} for workflow {account.workflow.slug}", field="batch_id")
    return batch_discard(batch=batch, reason=reason, actor=Actor.service_account(account))


def discard_summary(discarded: Discarded) -> str:
    """What a discard did and left, as the page says it afterwards."""
    batch, standing = discarded.batch, discarded.standing
    cancelled = _plural(discarded.cancelled, "pending proposal")
    if discarded.already:
        text = f"Batch {batch.pk} had been discarded already by {batch.discarded_by_label}"
        text += f"; cancelled {cancelled} that came in since." if discarded.cancelled else "; nothing was pending."
    else:
        text = f"Discarded batch {batch.pk}: cancelled {cancelled}."
    if standing.applied:
        text += f" {_plural(standing.applied, 'applied change')} stay: undo the batch to take them back."
    if standing.to_write:
        text += f" {_plural(standing.to_write, 'approved proposal')} will still be written unless you stop the batch."
    if standing.conflict:
        text += f" {_plural(standing.conflict, 'proposal')} in conflict still wait for a person."
    return text
