"""Reads about applying: why an approved proposal is waiting, and which ones the sweeper should queue."""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from approvals.models import (
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
from records.models import Change, ChangeAction

CANARY_CAP_REASON = "canary cap reached, resumes at 00:00 UTC"
STAGE_WAIT_REASONS = {
    Stage.DRAFT: "the workflow is in draft: it does not write yet",
    Stage.SHADOW: "the workflow is in shadow: it never writes",
    Stage.PAUSED: "the workflow is paused: nothing applies until it is resumed",
}
APPLYING_STAGES = (Stage.CANARY, Stage.LIVE)


def utc_day_start(moment: datetime | None = None) -> datetime:
    moment = (moment or timezone.now()).astimezone(UTC)
    return datetime.combine(moment.date(), time.min, tzinfo=UTC)


def canary_writes_today(*, workflow_slugs: Iterable[str], now: datetime | None = None) -> dict[str, int]:
    """Writes applied today (from 00:00 UTC) by each workflow, reverts not counted: what a canary cap counts."""
    rows = (
        Change.objects.filter(
            workflow_slug__in=list(workflow_slugs),
            applied_at__gte=utc_day_start(now),
        )
        .exclude(action=ChangeAction.REVERT)
        .values_list("workflow_slug")
        .annotate(count=Count("id"))
    )
    return dict(rows)


def canary_workflows_capped(*, limits: Mapping[str, int], now: datetime | None = None) -> set[str]:
    """Of these canary workflows (slug: daily limit), the slugs that reached their cap today. One query, or
    none when `limits` is empty."""
    if not limits:
        return set()
    used = canary_writes_today(workflow_slugs=limits, now=now)
    return {slug for slug, limit in limits.items() if used.get(slug, 0) >= limit}


def canary_cap_reached(*, workflow: Workflow, now: datetime | None = None) -> bool:
    return bool(canary_workflows_capped(limits={workflow.slug: workflow.canary_daily_limit}, now=now))


def describe_stop(switch: StopSwitch) -> str:
    if switch.scope == StopScope.GLOBAL:
        what = "everything"
    elif switch.scope == StopScope.WORKFLOW:
        what = f"workflow {switch.workflow.slug if switch.workflow else switch.workflow_id}"
    else:
        what = f"batch {switch.batch_id}"
    when = switch.engaged_at.astimezone(UTC)
    return f"stopped ({what}) by {switch.engaged_by_label} at {when:%Y-%m-%d %H:%M:%S} UTC: {switch.reason}"


def proposal_apply_wait_reasons(*, proposals: Iterable[Proposal]) -> dict[int, str]:
    """For approved proposals that cannot apply now, the reason a screen shows. Two queries, any count.

    The proposals must come with their workflow (select_related).
    """
    approved = [p for p in proposals if p.status == ProposalStatus.APPROVED]
    if not approved:
        return {}
    engaged = list(
        StopSwitch.objects.filter(released_at__isnull=True).select_related("workflow").order_by("engaged_at")
    )
    global_stop = next((s for s in engaged if s.scope == StopScope.GLOBAL), None)
    by_workflow = {s.workflow_id: s for s in engaged if s.scope == StopScope.WORKFLOW}
    by_batch = {s.batch_id: s for s in engaged if s.scope == StopScope.BATCH}
    capped = canary_workflows_capped(
        limits={p.workflow.slug: p.workflow.canary_daily_limit for p in approved if p.workflow.stage == Stage.CANARY}
    )
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
    return reasons


def proposal_apply_wait_reason(*, proposal: Proposal) -> str | None:
    """Why this approved proposal is not being applied now, or None when nothing holds it."""
    return proposal_apply_wait_reasons(proposals=[proposal]).get(proposal.pk)


def proposals_ready_to_apply(*, updated_before: datetime) -> list[int]:
    """Approved proposals untouched since `updated_before` that nothing holds: the sweeper queues these.

    A stop switch, a stage that does not write, or a canary cap already reached keeps a proposal out,
    unless an override in force for it, its batch or its workflow may lift that block (the apply
    path decides, at the moment of the write, whether it does).
    """
    engaged = list(StopSwitch.objects.filter(released_at__isnull=True).values_list("scope", "workflow_id", "batch_id"))
    if any(scope == StopScope.GLOBAL for scope, _, _ in engaged):
        return []
    queryset = Proposal.objects.filter(
        status=ProposalStatus.APPROVED, updated_at__lte=updated_before, workflow__stage__in=APPLYING_STAGES
    )
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
    return list(queryset.order_by("pk").values_list("pk", flat=True))


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
