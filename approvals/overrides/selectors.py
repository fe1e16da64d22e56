"""Reads about overrides: which one is in force, who is on duty, what waits on a block, what to review."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Case, Count, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from approvals.models import (
    Batch,
    Override,
    OverrideBlock,
    OverrideReview,
    OverrideScope,
    Proposal,
    ProposalStatus,
    Stage,
    StopScope,
    StopSwitch,
    Workflow,
)
from approvals.overrides.rights import (
    group_ids_of,
    may_act_under,
    may_decide_after_hours,
    may_override_proposal,
    on_duty,
    review_refusal,
)
from approvals.requesters import requester_reason
from approvals.workflows.releases import prompt_releases_held
from approvals.workflows.rights import (
    Viewer,
    workflows_overridable_by,
    workflows_reviewable_by,
    workflows_visible_to,
)
from approvals.workflows.rollout import canary_writes_today
from approvals.workflows.schedule import Duty, Shift, day_window_of, override_duty
from audit.models import AuditEvent
from core.errors import NotFound
from records.models import StoreOutage

_SPECIFIC_FIRST = Case(
    When(scope=OverrideScope.PROPOSAL, then=Value(0)),
    When(scope=OverrideScope.BATCH, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)
BLOCKED_PROPOSALS_SHOWN = 100
REVIEW_USES_SHOWN = 5


def override_active(
    *,
    block: str,
    workflow: Workflow | None = None,
    batch: Batch | None = None,
    proposal: Proposal | None = None,
    at: datetime | None = None,
) -> Override | None:
    """The override lifting `block` at `at` (now by default) whose target is one of the objects given.

    Each object given is a scope the override may name: pass every level that should count
    (a batch's stop is lifted by an override of the batch or of one of its proposals, never by
    one of the whole workflow, so that call passes `batch` and `proposal` only). Expiry and
    revocation are read here, at the moment of use: an expired override permits nothing even
    before the beat task has marked it.
    """
    at = at or timezone.now()
    covering = Q(pk__in=[])
    if proposal is not None:
        covering |= Q(scope=OverrideScope.PROPOSAL, proposal_id=proposal.pk)
    if batch is not None:
        covering |= Q(scope=OverrideScope.BATCH, batch_id=batch.pk)
    if workflow is not None:
        covering |= Q(scope=OverrideScope.WORKFLOW, workflow_id=workflow.pk)
    return (
        Override.objects.filter(covering, block=block, revoked_at__isnull=True, granted_at__lte=at, expires_at__gt=at)
        .order_by(_SPECIFIC_FIRST, "-expires_at")
        .first()
    )


def waits_for_day_approvers(*, workflow: Workflow, duty: Duty) -> bool:
    """Whether a pending proposal of `workflow` is outside its approvers' hours, where the after-hours
    group, on duty, may decide it only under an override: the block an after-hours override lifts.
    The approver group itself decides at any hour (see `review.rights`); what waits is everyone
    else. Needs the workflow's override groups selected."""
    return (
        duty.shift == Shift.AFTER_HOURS
        and day_window_of(workflow) is not None
        and workflow.approver_group_id != workflow.override_after_hours_group_id
    )


@dataclass(frozen=True)
class ProposalOverrides:
    """What overrides mean for one person and one proposal now."""

    duty: Duty | None
    offer: str  # the block this person may override on this proposal now, or ""
    decide: Override | None  # the after-hours override that lets this person decide it
    conflict: Override | None  # the conflict override that lets this person write over the current value

    @property
    def any(self) -> bool:
        return bool(self.offer or self.decide or self.conflict)


NO_OVERRIDES = ProposalOverrides(None, "", None, None)


def proposal_overrides_for(*, user: Viewer, proposal: Proposal, at: datetime | None = None) -> ProposalOverrides:
    """For a pending proposal waiting for off-duty approvers, or one in conflict: may `user`
    override its block now, and which override in force lets them act on it. Never for the
    person who asked for it."""
    if not user.is_authenticated or proposal.status not in (ProposalStatus.PENDING, ProposalStatus.CONFLICT):
        return NO_OVERRIDES
    if requester_reason(proposal=proposal, user=user):
        return NO_OVERRIDES
    at = at or timezone.now()
    workflow = Workflow.objects.select_related("override_day_group", "override_after_hours_group").get(
        pk=proposal.workflow_id
    )
    duty = override_duty(workflow=workflow, at=at)
    group_ids = group_ids_of(user)
    may_override = on_duty(duty=duty, group_ids=group_ids)
    if proposal.status == ProposalStatus.PENDING:
        active = override_active(block=OverrideBlock.AFTER_HOURS_APPROVAL, proposal=proposal, at=at)
        decide = (
            active
            if active and may_decide_after_hours(user=user, workflow=workflow, proposal=proposal, group_ids=group_ids)
            else None
        )
        waiting = waits_for_day_approvers(workflow=workflow, duty=duty)
        offer = OverrideBlock.AFTER_HOURS_APPROVAL if waiting and may_override and active is None else ""
        return ProposalOverrides(duty, offer, decide, None)
    active = override_active(block=OverrideBlock.CONFLICT, proposal=proposal, at=at)
    usable = active is not None and may_act_under(user=user, override=active, duty=duty, group_ids=group_ids)
    offer = OverrideBlock.CONFLICT if may_override and active is None else ""
    return ProposalOverrides(duty, offer, None, active if usable else None)


def visible_workflows(*, user: Viewer) -> QuerySet[Workflow]:
    """The workflows `user` may see, with the groups their duty is read from."""
    return (
        workflows_visible_to(user=user)
        .select_related("approver_group", "override_day_group", "override_after_hours_group")
        .order_by("slug")
    )


def duty_by_workflow(*, workflows: list[Workflow], at: datetime) -> dict[int, Duty]:
    """Who is on override duty for each workflow. Needs the groups selected with the workflows."""
    return {workflow.pk: override_duty(workflow=workflow, at=at) for workflow in workflows}


def canary_changes_today(*, workflows: list[Workflow], at: datetime) -> dict[str, int]:
    """How many records each canary workflow has changed today, counted as the apply engine counts
    them (from 00:00 UTC, reverts not counted)."""
    canary = [w.slug for w in workflows if w.stage == Stage.CANARY]
    if not canary:
        return {}
    return canary_writes_today(workflow_slugs=canary, now=at)


def overridden_within(
    *, proposal_ids: list[int], batch_ids: set[int], at: datetime | None = None
) -> tuple[set[int], set[int]]:
    """Of these proposals and batches, those with an override of their own lifting a stop switch or
    a canary cap at `at`: (proposal ids, batch ids). One query."""
    at = at or timezone.now()
    rows = list(
        Override.objects.filter(
            Q(scope=OverrideScope.PROPOSAL, proposal_id__in=proposal_ids)
            | Q(scope=OverrideScope.BATCH, batch_id__in=list(batch_ids)),
            block__in=[OverrideBlock.STOP_SWITCH, OverrideBlock.CANARY_CAP],
            revoked_at__isnull=True,
            granted_at__lte=at,
            expires_at__gt=at,
        ).values_list("scope", "proposal_id", "batch_id")
    )
    proposals = {proposal_id for scope, proposal_id, _ in rows if scope == OverrideScope.PROPOSAL}
    batches = {batch_id for scope, _, batch_id in rows if scope == OverrideScope.BATCH}
    return proposals, batches


def stop_overrides_in_force(*, switches: list[StopSwitch], at: datetime | None = None) -> dict[int, Override]:
    """For each engaged workflow or batch switch, the override in force that lets every write it
    holds pass (one of the workflow for a workflow's stop, of the batch for a batch's), latest to
    end first; none for the global stop, which is never overridden. One query when there is such a
    switch, none otherwise."""
    at = at or timezone.now()
    by_target = {
        (OverrideScope.WORKFLOW, switch.workflow_id)
        if switch.scope == StopScope.WORKFLOW
        else (OverrideScope.BATCH, switch.batch_id): switch.pk
        for switch in switches
        if switch.scope != StopScope.GLOBAL
    }
    if not by_target:
        return {}
    covering = Q(pk__in=[])
    for scope, target_id in by_target:
        if scope == OverrideScope.WORKFLOW:
            covering |= Q(scope=scope, workflow_id=target_id)
        else:
            covering |= Q(scope=scope, batch_id=target_id)
    found: dict[int, Override] = {}
    for override in (
        Override.objects.filter(
            covering, block=OverrideBlock.STOP_SWITCH, revoked_at__isnull=True, granted_at__lte=at, expires_at__gt=at
        )
        .select_related("granted_by")
        .order_by("expires_at")
    ):
        target = override.workflow_id if override.scope == OverrideScope.WORKFLOW else override.batch_id
        found[by_target[(OverrideScope(override.scope), target)]] = override
    return found


def override_target(
    *, user: Viewer, block: str, scope: str, target_id: str
) -> tuple[Workflow, Batch | None, Proposal | None]:
    """The workflow, batch and proposal an override form names, among those `user` may see."""
    workflows = visible_workflows(user=user)
    try:
        pk = int(target_id)
    except (TypeError, ValueError):
        raise NotFound(f"no {scope} '{target_id}'") from None
    if scope == OverrideScope.PROPOSAL:
        proposal = Proposal.objects.select_related("workflow", "batch").filter(pk=pk, workflow__in=workflows).first()
        if proposal is None:
            raise NotFound(f"no proposal {pk} you may see")
        return proposal.workflow, proposal.batch, proposal
    if scope == OverrideScope.BATCH:
        batch = Batch.objects.select_related("workflow").filter(pk=pk, workflow__in=workflows).first()
        if batch is None:
            raise NotFound(f"no batch {pk} you may see")
        return batch.workflow, batch, None
    if scope == OverrideScope.WORKFLOW:
        workflow = workflows.filter(pk=pk).first()
        if workflow is None:
            raise NotFound(f"no workflow {pk} you may see")
        return workflow, None, None
    raise NotFound(f"'{scope}' is not a scope an override can name")


@dataclass(frozen=True)
class StoreWait:
    """A record type whose store does not answer, and the approved changes that wait on it."""

    outage: StoreOutage
    waiting: int
    proposals: list[Proposal]  # the oldest of them, up to what was asked


def store_waits(*, workflow_ids: list[int] | None, shown: int = 0) -> list[StoreWait]:
    """Each record type whose store has been unreachable since its outage began, with how many
    approved proposals (of these workflows; None: of every workflow) wait on it, and the oldest
    `shown` of them. One query while every store answers; two when one does not and some are shown."""
    approved = Proposal.objects.filter(status=ProposalStatus.APPROVED, record_type=OuterRef("record_type"))
    if workflow_ids is not None:
        approved = approved.filter(workflow_id__in=workflow_ids)
    counted = approved.order_by().annotate(n=Func(F("id"), function="COUNT")).values("n")
    outages = list(
        StoreOutage.objects.annotate(waiting=Subquery(counted, output_field=IntegerField())).order_by("since")
    )
    if not outages or not shown:
        return [StoreWait(outage, outage.waiting or 0, []) for outage in outages]  # type: ignore[attr-defined]
    listed = Proposal.objects.filter(
        status=ProposalStatus.APPROVED, record_type__in=[outage.record_type for outage in outages]
    ).select_related("workflow")
    if workflow_ids is not None:
        listed = listed.filter(workflow_id__in=workflow_ids)
    by_type: dict[str, list[Proposal]] = defaultdict(list)
    for proposal in listed.order_by("updated_at", "pk")[: shown * len(outages)]:
        by_type[proposal.record_type].append(proposal)
    return [
        StoreWait(outage, outage.waiting or 0, by_type[outage.record_type][:shown])  # type: ignore[attr-defined]
        for outage in outages
    ]


@dataclass
class StopRow:
    switch: StopSwitch
    held: int
    duty: Duty | None
    may_override: bool
    scope: str
    target_id: int | None
    override: Override | None


@dataclass
class CanaryRow:
    workflow: Workflow
    applied_today: int
    held: int
    duty: Duty
    may_override: bool
    override: Override | None
    prompt_version: str = ""  # a live workflow's prompt version not promoted yet, at its cap
    reason: str = ""


@dataclass
class ProposalRow:
    proposal: Proposal
    duty: Duty
    may_override: bool
    override: Override | None
    openable: bool  # the viewer may open it on the review screens
    approver: bool = False  # the viewer is in its approver group, who decide it at any hour


@dataclass
class DutyRow:
    workflow: Workflow
    duty: Duty
    mine: bool


@dataclass
class BlockedOverview:
    at: datetime
    duties: list[DutyRow]
    stops: list[StopRow]
    canary: list[CanaryRow]
    after_hours: list[ProposalRow]
    after_hours_more: bool
    conflicts: list[ProposalRow]
    conflicts_more: bool
    active: list[Override]
    revocable: set[int]
    to_review: int
    unreachable: list[StoreWait]


def blocked_overview(*, user: Viewer, at: datetime | None = None) -> BlockedOverview:
    """Everything waiting on a block in the workflows `user` may see, in a fixed number of queries."""
    at = at or timezone.now()
    workflows = list(visible_workflows(user=user))
    by_id = {w.pk: w for w in workflows}
    ids = list(by_id)
    group_ids = group_ids_of(user)
    duties = duty_by_workflow(workflows=workflows, at=at)

    active = list(
        Override.objects.filter(
            workflow_id__in=ids, revoked_at__isnull=True, granted_at__lte=at, expires_at__gt=at
        ).select_related("workflow", "batch", "granted_by")
    )

    def active_for(block: str, scope: str, target_id: int | None) -> Override | None:
        for override in active:
            if override.block != block or override.scope != scope:
                continue
            if {
                OverrideScope.PROPOSAL: override.proposal_id,
                OverrideScope.BATCH: override.batch_id,
                OverrideScope.WORKFLOW: override.workflow_id,
            }[OverrideScope(scope)] == target_id:
                return override
        return None

    held_by_workflow: dict[int, int] = defaultdict(int)
    held_by_batch: dict[int, int] = defaultdict(int)
    held_by_prompt: dict[tuple[int, str], int] = defaultdict(int)
    for row in (
        Proposal.objects.filter(workflow_id__in=ids, status=ProposalStatus.APPROVED)
        .values("workflow_id", "batch_id", "prompt_version")
        .annotate(n=Count("id"))
    ):
        held_by_workflow[row["workflow_id"]] += row["n"]
        held_by_prompt[(row["workflow_id"], row["prompt_version"])] += row["n"]
        if row["batch_id"] is not None:
            held_by_batch[row["batch_id"]] += row["n"]

    stops: list[StopRow] = []
    for switch in (
        StopSwitch.objects.filter(Q(scope=StopScope.GLOBAL) | Q(workflow_id__in=ids), released_at__isnull=True)
        .select_related("batch", "workflow")
        .order_by("engaged_at")
    ):
        if switch.scope == StopScope.GLOBAL:
            stops.append(StopRow(switch, sum(held_by_workflow.values()), None, False, "", None, None))
            continue
        duty = duties[switch.workflow_id] if switch.workflow_id else None
        if switch.scope == StopScope.BATCH:
            held, scope, target = held_by_batch.get(switch.batch_id or 0, 0), OverrideScope.BATCH, switch.batch_id
        else:
            held, scope, target = (
                held_by_workflow.get(switch.workflow_id or 0, 0),
                OverrideScope.WORKFLOW,
                switch.workflow_id,
            )
        override = active_for(OverrideBlock.STOP_SWITCH, scope, target)
        may = duty is not None and on_duty(duty=duty, group_ids=group_ids)
        stops.append(StopRow(switch, held, duty, may and override is None, scope, target, override))

    canary: list[CanaryRow] = []
    applied = canary_changes_today(workflows=workflows, at=at)
    for workflow in workflows:
        if workflow.stage != Stage.CANARY:
            continue
        done = applied.get(workflow.slug, 0)
        held = held_by_workflow.get(workflow.pk, 0)
        if done < workflow.canary_daily_limit or not held:
            continue
        duty = duties[workflow.pk]
        override = active_for(OverrideBlock.CANARY_CAP, OverrideScope.WORKFLOW, workflow.pk)
        may = on_duty(duty=duty, group_ids=group_ids)
        canary.append(CanaryRow(workflow, done, held, duty, may and override is None, override))
    prompts = prompt_releases_held(workflow_ids=[w.pk for w in workflows if w.stage == Stage.LIVE], now=at)
    for (workflow_id, version), release in sorted(prompts.items()):
        held = held_by_prompt.get((workflow_id, version), 0)
        if not release.capped or not held:
            continue
        duty = duties[workflow_id]
        override = active_for(OverrideBlock.CANARY_CAP, OverrideScope.WORKFLOW, workflow_id)
        may = on_duty(duty=duty, group_ids=group_ids) and override is None
        canary.append(
            CanaryRow(by_id[workflow_id], release.written, held, duty, may, override, version, release.reason)
        )

    off_duty = [w.pk for w in workflows if waits_for_day_approvers(workflow=w, duty=duties[w.pk])]
    waiting = list(
        Proposal.objects.filter(workflow_id__in=off_duty, status=ProposalStatus.PENDING)
        .select_related("batch", "requested_by_user")
        .order_by("created_at")[: BLOCKED_PROPOSALS_SHOWN + 1]
    )
    conflicted = list(
        Proposal.objects.filter(workflow_id__in=ids, status=ProposalStatus.CONFLICT)
        .select_related("batch", "requested_by_user")
        .order_by("updated_at")[: BLOCKED_PROPOSALS_SHOWN + 1]
    )

    # The review screens open a waiting proposal to its reviewers and its override groups
    # (review.rights.proposal_for_viewer); its reviewers decide it at any hour.
    reviewing = set(workflows_reviewable_by(user=user).filter(pk__in=ids).values_list("pk", flat=True))
    openable = reviewing | set(workflows_overridable_by(user=user).filter(pk__in=ids).values_list("pk", flat=True))

    def proposal_rows(proposals: list[Proposal], block: str) -> list[ProposalRow]:
        rows = []
        for proposal in proposals[:BLOCKED_PROPOSALS_SHOWN]:
            proposal.workflow = by_id[proposal.workflow_id]
            duty = duties[proposal.workflow_id]
            override = active_for(block, OverrideScope.PROPOSAL, proposal.pk)
            may = may_override_proposal(user=user, proposal=proposal, duty=duty, group_ids=group_ids)
            rows.append(
                ProposalRow(
                    proposal,
                    duty,
                    may and override is None,
                    override,
                    proposal.workflow_id in openable,
                    approver=proposal.workflow_id in reviewing and not requester_reason(proposal=proposal, user=user),
                )
            )
        return rows

    to_review = Override.objects.filter(workflow_id__in=ids, review=OverrideReview.PENDING).count()
    return BlockedOverview(
        at=at,
        duties=[
            DutyRow(w, duties[w.pk], on_duty(duty=duties[w.pk], group_ids=group_ids))
            for w in workflows
            if duties[w.pk].group is not None
        ],
        stops=stops,
        canary=canary,
        after_hours=proposal_rows(waiting, OverrideBlock.AFTER_HOURS_APPROVAL),
        after_hours_more=len(waiting) > BLOCKED_PROPOSALS_SHOWN,
        conflicts=proposal_rows(conflicted, OverrideBlock.CONFLICT),
        conflicts_more=len(conflicted) > BLOCKED_PROPOSALS_SHOWN,
        active=sorted(active, key=lambda o: o.expires_at),
        revocable={
            o.pk
            for o in active
            if may_act_under(user=user, override=o, duty=duties[o.workflow_id], group_ids=group_ids)
        },
        to_review=to_review,
        unreachable=store_waits(workflow_ids=ids, shown=BLOCKED_PROPOSALS_SHOWN),
    )


@dataclass
class UseSummary:
    what: str
    count: int
    examples: list[str] = field(default_factory=list)


@dataclass
class ReviewRow:
    override: Override
    uses: list[UseSummary]
    may_review: bool


@dataclass
class MorningReview:
    last_acknowledged_at: datetime | None
    last_acknowledged_by: str
    to_review: list[ReviewRow]
    flagged: list[ReviewRow]


def _uses_by_override(ids: list[int]) -> dict[int, list[UseSummary]]:
    """What was done under each override, from its `override.used` events, summarised."""
    uses: dict[int, dict[str, UseSummary]] = defaultdict(dict)
    for event in (
        AuditEvent.objects.filter(action="override.used", details__override_id__in=ids)
        .order_by("id")
        .values("details", "record_type", "record_id", "proposal_id")
    ):
        details = event["details"]
        what = details.get("what", "")
        summary = uses[details["override_id"]].setdefault(what, UseSummary(what, 0))
        summary.count += 1
        if len(summary.examples) < REVIEW_USES_SHOWN:
            label = f"{event['record_type']} {event['record_id']}" if event["record_id"] else ""
            if event["proposal_id"]:
                label = f"{label} (proposal {event['proposal_id']})".strip()
            if label:
                summary.examples.append(label)
    return {pk: list(summaries.values()) for pk, summaries in uses.items()}


def _review_rows(overrides: list[Override], *, user: Viewer, group_ids: set[int]) -> list[ReviewRow]:
    uses = _uses_by_override([o.pk for o in overrides])
    return [
        ReviewRow(
            override,
            uses.get(override.pk, []),
            override.review == OverrideReview.PENDING
            and not review_refusal(user=user, override=override, group_ids=group_ids),
        )
        for override in overrides
    ]


def _reviewable(user: Viewer) -> QuerySet[Override]:
    return Override.objects.filter(workflow__in=visible_workflows(user=user)).select_related(
        "workflow", "batch", "proposal", "granted_by", "revoked_by", "reviewed_by"
    )


def override_morning_review(*, user: Viewer, at: datetime | None = None, flagged_days: int = 7) -> MorningReview:
    """The overrides since the last acknowledgement (every one not yet reviewed), what was done
    under each, and those flagged lately. A fixed number of queries whatever the row count."""
    at = at or timezone.now()
    group_ids = group_ids_of(user)
    pending = list(_reviewable(user).filter(review=OverrideReview.PENDING).order_by("granted_at"))
    flagged = list(
        _reviewable(user)
        .filter(review=OverrideReview.FLAGGED, reviewed_at__gte=at - timedelta(days=flagged_days))
        .order_by("-reviewed_at")
    )
    last = (
        Override.objects.filter(workflow__in=visible_workflows(user=user), review=OverrideReview.ACKNOWLEDGED)
        .values("reviewed_at", "reviewed_by__username")
        .order_by("-reviewed_at")
        .first()
    )
    rows = _review_rows(pending + flagged, user=user, group_ids=group_ids)
    return MorningReview(
        last_acknowledged_at=last["reviewed_at"] if last else None,
        last_acknowledged_by=last["reviewed_by__username"] if last else "",
        to_review=rows[: len(pending)],
        flagged=rows[len(pending) :],
    )


def override_review_row(*, user: Viewer, override_id: int) -> ReviewRow:
    override = _reviewable(user).filter(pk=override_id).first()
    if override is None:
        raise NotFound(f"no override {override_id} you may see")
    return _review_rows([override], user=user, group_ids=group_ids_of(user))[0]
