"""The circuit breaker: a workflow's file may set limits on how often one prompt version's proposals
are rejected, end in conflict or have their change undone. When a rate passes its limit, the
breaker engages a stop on that workflow by itself, on the trail, and people are told.

What it counts, per prompt version, over that version's last `window` decided proposals (newest
`decided_at` first):

- **decided**: a person approved or rejected it, or the policy approved it without review; it is
  now approved, applied, rejected, in conflict, failed or reverted. Pending, shadowed, expired and
  cancelled proposals were never decided, and are not counted.
- **reject rate**: rejected / decided; **conflict rate**: in conflict / decided (a conflict a
  person has since chosen to write over is approved again, and no longer counts as one);
- **undo rate**: reverted / applied, where applied means its change was written (applied or
  reverted now).

A rate trips the breaker when it is strictly greater than its limit and its own count (decided for
the first two, applied for the third) is at least `min_samples`. Each decision that moves a rate
asks `breaker_check` in its own transaction: approving and rejecting (`review.services`), a
conflict found by the worker (`applying.verdicts`), an undo (`undo.services`). An approval by
policy at intake counts in the window but is not a moment of judging (intake stays one bulk write).

A rollback drill's proposals (`undo.drill`) are never judged: a drill undoes all it writes. The
breaker never trips while the workflow has a stop of its own engaged (by a person or by the
breaker): its writes are held already. Only a person releases a breaker's stop, on the same pages
and commands as any other. After that release the breaker judges that prompt version only on
proposals decided after it: the decisions that tripped it were looked at by whoever released it,
so it needs `min_samples` new ones before it can trip again, and a person is never stopped again by
the same decisions.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, Max, OuterRef, Q

from approvals.models import Proposal, ProposalStatus, StopScope, StopSwitch, Workflow
from approvals.notices import notice_record
from approvals.stops.services import stop_engage
from approvals.workflows.rollout import DRILL_PROMPT_VERSION_PREFIX
from audit.services import Actor
from core.errors import InvalidTransition

BREAKER = Actor.system("the circuit breaker")

DECIDED = (
    ProposalStatus.APPROVED,
    ProposalStatus.APPLIED,
    ProposalStatus.REJECTED,
    ProposalStatus.CONFLICT,
    ProposalStatus.FAILED,
    ProposalStatus.REVERTED,
)
WRITTEN = (ProposalStatus.APPLIED, ProposalStatus.REVERTED)


@dataclass(frozen=True)
class Tally:
    """What one prompt version's window holds."""

    decided: int
    rejected: int
    conflicts: int
    applied: int
    undone: int


@dataclass(frozen=True)
class Trip:
    """A rate over its limit: which, how many of how many, and the limit."""

    limit: str  # the file's key: max_reject_rate, max_conflict_rate or max_undo_rate
    count: int
    of: int
    maximum: float

    @property
    def rate(self) -> float:
        return self.count / self.of

    def describe(self, *, workflow: Workflow, prompt_version: str, decided: int, since: datetime | None) -> str:
        """The stop's reason: the version, the rate and the limit first (the banner's one line shows
        them), then what was counted."""
        rate, maximum = percents(self.rate, self.maximum)
        last = f"its last {decided} decided proposals in {workflow.slug}"
        if self.limit == "max_reject_rate":
            what, counted = "rejected", f"{self.count} of {last}"
        elif self.limit == "max_conflict_rate":
            what, counted = "in conflict", f"{self.count} of {last}"
        else:
            what, counted = "undone", f"{self.count} of the {self.of} changes it wrote among {last}"
        if since is not None:
            counted += " since the breaker was last released"
        return (
            f"circuit breaker: prompt version {prompt_version} {what} at {rate}, over its limit of {maximum}: {counted}"
        )


def percents(rate: float, limit: float) -> tuple[str, str]:
    """`rate` and `limit` as percentages, with as many decimals as it takes to tell them apart."""
    for decimals in range(0, 4):
        shown = f"{rate * 100:.{decimals}f}%", f"{limit * 100:.{decimals}f}%"
        if shown[0] != shown[1]:
            break
    return shown


def breaker_tally(*, workflow: Workflow, prompt_version: str, window: int, since: datetime | None) -> Tally:
    """One query: the version's last `window` proposals decided after `since`, counted."""
    latest = Proposal.objects.filter(workflow=workflow, prompt_version=prompt_version, status__in=DECIDED)
    if since is not None:
        latest = latest.filter(decided_at__gt=since)
    counted = latest.order_by("-decided_at", "-id")[:window].aggregate(
        decided=Count("id"),
        rejected=Count("id", filter=Q(status=ProposalStatus.REJECTED)),
        conflicts=Count("id", filter=Q(status=ProposalStatus.CONFLICT)),
        applied=Count("id", filter=Q(status__in=WRITTEN)),
        undone=Count("id", filter=Q(status=ProposalStatus.REVERTED)),
    )
    return Tally(**counted)


def breaker_judge(*, limits: dict, tally: Tally) -> Trip | None:
    """The first rate over its limit (reject, conflict, then undo), or None. A rate is judged only
    once its own count reaches `min_samples`, and trips only when strictly over its limit."""
    samples = limits.get("min_samples", 1)
    judged = (
        ("max_reject_rate", tally.rejected, tally.decided),
        ("max_conflict_rate", tally.conflicts, tally.decided),
        ("max_undo_rate", tally.undone, tally.applied),
    )
    for key, count, of in judged:
        maximum = limits.get(key)
        if maximum is None or of < samples or of == 0:
            continue
        if count / of > maximum:
            return Trip(limit=key, count=count, of=of, maximum=float(maximum))
    return None


def breaker_check(*, workflow: Workflow, prompt_version: str) -> StopSwitch | None:
    """Judge `prompt_version` of `workflow` after a decision that moved its rates, in the caller's
    transaction; engage the workflow's stop when a rate is over its limit. The switch it engaged,
    or None. Nothing is read for a workflow whose file sets no breaker; two queries otherwise."""
    limits = workflow.circuit_breaker
    if not limits or not prompt_version or prompt_version.startswith(DRILL_PROMPT_VERSION_PREFIX):
        return None
    stops = StopSwitch.objects.filter(workflow=workflow, scope=StopScope.WORKFLOW).aggregate(
        engaged=Count("id", filter=Q(released_at__isnull=True)),
        released=Max("released_at", filter=Q(breaker_prompt_version=prompt_version)),
    )
    if stops["engaged"]:
        return None
    since = stops["released"]
    tally = breaker_tally(workflow=workflow, prompt_version=prompt_version, window=limits["window"], since=since)
    trip = breaker_judge(limits=limits, tally=tally)
    if trip is None:
        return None
    reason = trip.describe(workflow=workflow, prompt_version=prompt_version, decided=tally.decided, since=since)
    rate, maximum = percents(trip.rate, trip.maximum)
    try:
        switch = stop_engage(
            scope=StopScope.WORKFLOW,
            reason=reason,
            actor=BREAKER,
            workflow=workflow,
            breaker_prompt_version=prompt_version,
            details={
                "circuit_breaker": {
                    "prompt_version": prompt_version,
                    "limit": trip.limit,
                    "count": trip.count,
                    "of": trip.of,
                    "rate": round(trip.rate, 6),
                    "maximum": trip.maximum,
                    "window": limits["window"],
                    "min_samples": limits.get("min_samples"),
                    "decided": tally.decided,
                    "rejected": tally.rejected,
                    "conflicts": tally.conflicts,
                    "applied": tally.applied,
                    "undone": tally.undone,
                    "since": since.isoformat() if since else None,
                }
            },
        )
    except InvalidTransition:
        # Someone engaged the workflow's stop in the meantime: its writes are held already.
        return None
    # The trip's one message: `stop_engage` records no `stop_engaged` notice for a breaker's stop.
    notice_record(
        event="circuit_tripped",
        workflow=workflow,
        subject=f"Circuit breaker stopped {workflow.slug}: prompt version {prompt_version} at {rate} (limit {maximum})",
        body=(
            f"{reason}.\n\nNo write of workflow {workflow.slug} is applied until a person releases the stop "
            f"(its owner or the group on override duty). Pending proposals of prompt version {prompt_version} "
            "are marked on the review queue."
        ),
        dedupe_key=f"circuit:{switch.pk}",
    )
    return switch


def breaker_tripped_over() -> Exists:
    """For a queryset of proposals: whether a breaker stop engaged now names the proposal's workflow
    and prompt version (the queue marks those), in the same query."""
    return Exists(
        StopSwitch.objects.filter(
            workflow_id=OuterRef("workflow_id"),
            released_at__isnull=True,
            breaker_prompt_version=OuterRef("prompt_version"),
        )
    )
