"""Reads for the worker and the pages that watch it: what may apply, what waits and why."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from approvals.models import (
    Batch,
    Override,
    OverrideBlock,
    OverrideScope,
    Proposal,
    ProposalStatus,
    Stage,
    StopScope,
    StopSwitch,
    Workflow,
)
from approvals.stops.selectors import describe_stop
from approvals.workflows.releases import prompt_held_at_cap, prompt_releases_held
from approvals.workflows.rollout import APPLYING_STAGES, CANARY_CAP_REASON, STAGE_WAIT_REASONS, canary_workflows_capped


def proposal_apply_wait_reasons(*, proposals: Iterable[Proposal]) -> dict[int, str]:
    """For approved proposals that cannot apply now, the reason a screen shows. Two queries, any
    count, and one more when some are of live workflows (the prompt versions held to the cap).

    The proposals must come with their workflow (select_related).
    """
    approved = [p for p in proposals if p.status == ProposalStatus.APPROVED]
    if not approved:
        return {}
    engaged = list(
        StopSwitch.objects.filter(released_at__isnull=True).select_related("workflow", "batch").order_by("engaged_at")
    )
    global_stop = next((s for s in engaged if s.scope == StopScope.GLOBAL), None)
    by_workflow = {s.workflow_id: s for s in engaged if s.scope == StopScope.WORKFLOW}
    by_batch = {s.batch_id: s for s in engaged if s.scope == StopScope.BATCH}
    capped = canary_workflows_capped(
        limits={p.workflow.slug: p.workflow.canary_daily_limit for p in approved if p.workflow.stage == Stage.CANARY}
    )
    prompts = prompt_releases_held(workflow_ids={p.workflow_id for p in approved if p.workflow.stage == Stage.LIVE})
    reasons: dict[int, str] = {}
    for proposal in approved:
        workflow = proposal.workflow
        switch = global_stop or by_workflow.get(workflow.pk) or by_batch.get(proposal.batch_id)
        if workflow.stage in STAGE_WAIT_REASONS:
            reasons[proposal.pk] = STAGE_WAIT_REASONS[Stage(workflow.stage)]
        elif switch is not None:
            reasons[proposal.pk] = describe_stop(switch)
        elif workflow.slug in capped:
            reasons[proposal.pk] = CANARY_CAP_REASON
        elif (held := prompts.get((workflow.pk, proposal.prompt_version))) is not None and held.capped:
            reasons[proposal.pk] = held.reason
    return reasons


def proposal_apply_wait_reason(*, proposal: Proposal) -> str | None:
    """Why this approved proposal is not being applied now, or None when nothing holds it."""
    return proposal_apply_wait_reasons(proposals=[proposal]).get(proposal.pk)


def proposals_ready_to_apply(*, updated_before: datetime, nudged_before: datetime | None = None) -> list[int]:
    """The ids of `proposals_ready_to_apply_query`, in order."""
    query = proposals_ready_to_apply_query(updated_before=updated_before, nudged_before=nudged_before)
    return list(query.order_by("pk").values_list("pk", flat=True))


def proposals_ready_to_apply_query(
    *, updated_before: datetime, nudged_before: datetime | None = None
) -> QuerySet[Proposal]:
    """Approved proposals untouched since `updated_before` that nothing holds: the sweeper queues these.
    With `nudged_before`, only those the sweeper has not queued since then (never, or before it).

    A stop switch, a stage that does not write, or a canary cap already reached (a canary workflow's,
    or a live one's for a prompt version not promoted yet) keeps a proposal out,
    unless an override in force for it, its batch or its workflow may lift that block (the apply
    path decides, at the moment of the write, whether it does). At most three queries with the one
    that reads the rows (four when a canary workflow has approved proposals), whatever the backlog.
    """
    engaged = list(StopSwitch.objects.filter(released_at__isnull=True).values_list("scope", "workflow_id", "batch_id"))
    if any(scope == StopScope.GLOBAL for scope, _, _ in engaged):
        return Proposal.objects.none()
    queryset = Proposal.objects.filter(
        status=ProposalStatus.APPROVED, updated_at__lte=updated_before, workflow__stage__in=APPLYING_STAGES
    )
    if nudged_before is not None:
        queryset = queryset.filter(Q(nudged_at__isnull=True) | Q(nudged_at__lte=nudged_before))
    holds: list[Q] = []
    stopped_workflows = {workflow_id for scope, workflow_id, _ in engaged if scope == StopScope.WORKFLOW}
    stopped_batches = {batch_id for scope, _, batch_id in engaged if scope == StopScope.BATCH}
    if stopped_workflows:
        holds.append(Q(workflow_id__in=stopped_workflows))
    if stopped_batches:
        holds.append(Q(batch_id__in=stopped_batches))
    canaries = list(
        Workflow.objects.filter(stage=Stage.CANARY, proposals__status=ProposalStatus.APPROVED)
        .distinct()
        .values_list("pk", "slug", "canary_daily_limit")
    )
    capped = canary_workflows_capped(limits={slug: limit for _, slug, limit in canaries})
    if capped:
        holds.append(Q(workflow_id__in=[pk for pk, slug, _ in canaries if slug in capped]))
    holds.append(Q(prompt_held_at_cap()))  # a live workflow's prompt version not promoted yet, at its cap
    if holds:
        held = holds[0]
        for hold in holds[1:]:
            held |= hold
        now = timezone.now()
        lifting = Override.objects.filter(
            block__in=[OverrideBlock.STOP_SWITCH, OverrideBlock.CANARY_CAP],
            revoked_at__isnull=True,
            granted_at__lte=now,
            expires_at__gt=now,
        )
        lifted = (
            Q(pk__in=lifting.filter(scope=OverrideScope.PROPOSAL).values("proposal_id"))
            | Q(batch_id__in=lifting.filter(scope=OverrideScope.BATCH).values("batch_id"))
            | Q(workflow_id__in=lifting.filter(scope=OverrideScope.WORKFLOW).values("workflow_id"))
        )
        queryset = queryset.exclude(held & ~lifted)
    return queryset


def stale_cutoff(*, seconds: float, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=seconds)


def proposals_waiting_on_stop(*, switch: StopSwitch) -> int:
    """How many approved proposals this switch covers: what applies once it is released."""
    queryset = Proposal.objects.filter(status=ProposalStatus.APPROVED)
    if switch.scope == StopScope.WORKFLOW and switch.workflow_id is not None:
        queryset = queryset.filter(workflow_id=switch.workflow_id)
    elif switch.scope == StopScope.BATCH and switch.batch_id is not None:
        queryset = queryset.filter(batch_id=switch.batch_id)
    return queryset.count()


@dataclass(frozen=True)
class BatchInProgress:
    """A batch with approved writes still to apply, as the banner names it; `held` says why none is
    being written now (the canary cap), and is empty while it writes."""

    batch_id: int
    name: str
    workflow_id: int
    workflow_slug: str
    written: int
    waiting: int
    held: str = ""


def batches_in_progress(*, workflow_ids: frozenset[int] | None, limit: int = 5) -> list[BatchInProgress]:
    """Batches (of these workflows; None means every workflow) whose approved proposals are being applied.

    Only canary and live workflows write; a batch of a shadow, draft or paused one is not in progress.
    One query, and one more when a canary workflow is among them: the approved rows find the batches
    (index on status), and only those batches' rows are counted (index on batch and status), however
    many finished batches the table holds.
    """
    approved = Proposal.objects.filter(
        status=ProposalStatus.APPROVED, batch__isnull=False, workflow__stage__in=APPLYING_STAGES
    )
    if workflow_ids is not None:
        approved = approved.filter(workflow_id__in=workflow_ids)
    rows = list(
        Batch.objects.filter(pk__in=approved.values("batch_id"))
        .annotate(
            waiting=Count("proposals", filter=Q(proposals__status=ProposalStatus.APPROVED)),
            written=Count("proposals", filter=Q(proposals__status=ProposalStatus.APPLIED)),
        )
        .values_list(
            "pk",
            "name",
            "workflow_id",
            "workflow__slug",
            "written",
            "waiting",
            "workflow__stage",
            "workflow__canary_daily_limit",
        )
        .order_by("pk")[:limit]
    )
    capped = canary_workflows_capped(limits={row[3]: row[7] for row in rows if row[6] == Stage.CANARY})
    return [
        BatchInProgress(
            batch_id,
            name,
            workflow_id,
            slug,
            written,
            waiting,
            held=CANARY_CAP_REASON if slug in capped else "",
        )
        for batch_id, name, workflow_id, slug, written, waiting, _, _ in rows
    ]
