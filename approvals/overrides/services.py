"""Overrides: a person on duty lifts one block for one proposal, batch or workflow, with a written
reason, for a bounded time. Every grant, use, expiry, revocation and review is in the trail.

The apply path reads `override_stop_hold` and `override_canary_hold`, and once it knows whether it
writes or finds a conflict, records each use with `override_record_apply`. The decision path asks
`override_lift_for_decision` and, for a conflict written over deliberately, `override_lift`; each
records the use it permits.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from approvals import reasons
from approvals.jobs import apply_queue
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
from approvals.notices import notice_record
from approvals.overrides.rights import (
    asked_for_any,
    duty_refusal,
    group_ids_of,
    may_act_under,
    may_decide_after_hours,
    review_refusal,
)
from approvals.overrides.selectors import override_active
from approvals.stops.selectors import stops_engaged_over
from approvals.workflows.releases import prompt_hold_reason, prompt_releases_held, prompt_writes_today
from approvals.workflows.rollout import CANARY_CAP_REASON, canary_cap_reached
from approvals.workflows.schedule import Shift, override_duty
from audit.services import Actor, EventData, audit_record, audit_record_many, user_label
from core.errors import InvalidTransition, NotAllowed, ValidationFailed

DEFAULT_OVERRIDE_MINUTES = 60
EXPIRE_CHUNK = 500
_SCOPES_FOR_BLOCK = {
    OverrideBlock.STOP_SWITCH: {OverrideScope.PROPOSAL, OverrideScope.BATCH, OverrideScope.WORKFLOW},
    OverrideBlock.CANARY_CAP: {OverrideScope.PROPOSAL, OverrideScope.BATCH, OverrideScope.WORKFLOW},
    OverrideBlock.AFTER_HOURS_APPROVAL: {OverrideScope.PROPOSAL},
    OverrideBlock.CONFLICT: {OverrideScope.PROPOSAL},
}


def _event_target(override: Override) -> dict[str, Any]:
    target: dict[str, Any] = {"workflow_slug": override.workflow.slug, "batch_id": override.batch_id}
    if override.proposal is not None:
        target |= {
            "proposal_id": override.proposal_id,
            "record_type": override.proposal.record_type,
            "record_id": override.proposal.record_id,
        }
    return target


def _details(override: Override, **more: Any) -> dict[str, Any]:
    return {"override_id": override.pk, "block": override.block, "scope": override.scope} | more


def _held_approved(override: Override) -> list[int]:
    """Approved proposals this override lets through, to hand back to the apply worker."""
    if override.block not in (OverrideBlock.STOP_SWITCH, OverrideBlock.CANARY_CAP):
        return []
    approved = Proposal.objects.filter(status=ProposalStatus.APPROVED)
    if override.scope == OverrideScope.PROPOSAL:
        approved = approved.filter(overrides=override)
    elif override.scope == OverrideScope.BATCH:
        approved = approved.filter(batch=override.batch_id)
    else:
        approved = approved.filter(workflow_id=override.workflow_id)
    return list(approved.order_by("approved_at", "pk").values_list("pk", flat=True))


def _check_stop_can_be_lifted(workflow: Workflow, batch: Batch | None, scope: str) -> None:
    engaged = StopSwitch.objects.filter(released_at__isnull=True)
    if engaged.filter(scope=StopScope.GLOBAL).exists():
        raise InvalidTransition("the global stop is engaged; it is released, never overridden")
    # An override lifts a stop only where its own scope lies inside the stop's scope.
    liftable = Q(scope=StopScope.WORKFLOW, workflow_id=workflow.pk)
    if scope != OverrideScope.WORKFLOW and batch is not None:
        liftable |= Q(scope=StopScope.BATCH, batch_id=batch.pk)
    if not engaged.filter(liftable).exists():
        raise InvalidTransition(f"no engaged stop switch holds this {scope}; there is nothing to override")


def _has_daily_cap(workflow: Workflow) -> bool:
    """A canary workflow has its daily cap; a live one, for each prompt version not promoted yet."""
    if workflow.stage == Stage.LIVE:
        return bool(prompt_releases_held(workflow_ids=[workflow.pk]))
    return workflow.stage == Stage.CANARY


def override_grant(
    *,
    user: User,
    block: str,
    scope: str,
    reason: str,
    minutes: int | None = None,
    workflow: Workflow | None = None,
    batch: Batch | None = None,
    proposal: Proposal | None = None,
) -> Override:
    """Lift `block` for one proposal, batch or workflow until the override expires.

    Only a member of the group on override duty now may grant it, never for their own request.
    The reason must be at least a short sentence; the duration at most the workflow's maximum.
    """
    problems: list[tuple[str, str]] = []
    if block not in OverrideBlock.values:
        kinds = ", ".join(OverrideBlock.values)
        raise ValidationFailed([("block", f"'{block}' cannot be overridden; only these blocks can: {kinds}")])
    if scope not in _SCOPES_FOR_BLOCK[OverrideBlock(block)]:
        allowed = " or ".join(sorted(_SCOPES_FOR_BLOCK[OverrideBlock(block)]))
        raise ValidationFailed([("scope", f"an override of {block} names a {allowed}, not a {scope}")])
    if scope == OverrideScope.PROPOSAL and proposal is None:
        raise ValidationFailed([("proposal", "a proposal override needs its proposal")])
    if scope == OverrideScope.BATCH and batch is None:
        raise ValidationFailed([("batch", "a batch override needs its batch")])
    if proposal is not None:
        workflow, batch = proposal.workflow, proposal.batch
    elif batch is not None:
        workflow = batch.workflow
    if workflow is None:
        raise ValidationFailed([("workflow", "an override needs the workflow it belongs to")])

    if problem := reasons.OVERRIDE.problem(reason):
        problems.append(problem)
    reason = (reason or "").strip()
    maximum = workflow.override_max_minutes
    if minutes is None:
        minutes = min(DEFAULT_OVERRIDE_MINUTES, maximum)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
        problems.append(("minutes", "must be a whole number of minutes, 1 or more"))
    elif minutes > maximum:
        problems.append(("minutes", f"at most {maximum} minutes for workflow {workflow.slug}"))

    with transaction.atomic():
        # Grants for one workflow are serialised, so two people cannot both lift the same block.
        workflow = (
            Workflow.objects.select_for_update(of=("self",))
            .select_related("override_day_group", "override_after_hours_group")
            .get(pk=workflow.pk)
        )
        if proposal is not None:
            proposal = (
                Proposal.objects.select_for_update(of=("self",)).select_related("workflow", "batch").get(pk=proposal.pk)
            )
        now = timezone.now()
        duty = override_duty(workflow=workflow, at=now)
        if refusal := duty_refusal(workflow=workflow, duty=duty, group_ids=group_ids_of(user)):
            raise NotAllowed(refusal)
        if asked_for_any(user=user, workflow=workflow, batch=batch, proposal=proposal):
            raise NotAllowed(f"you asked for this {scope}'s changes; someone else on duty must override it")
        if problems:
            raise ValidationFailed(problems)

        if block == OverrideBlock.STOP_SWITCH:
            _check_stop_can_be_lifted(workflow, batch, scope)
        elif block == OverrideBlock.CANARY_CAP and not _has_daily_cap(workflow):
            raise InvalidTransition(f"workflow {workflow.slug} is not in canary; it has no daily cap to lift")
        elif block == OverrideBlock.AFTER_HOURS_APPROVAL and proposal is not None:
            if proposal.status != ProposalStatus.PENDING:
                raise InvalidTransition(f"proposal {proposal.pk} is {proposal.status}, not waiting for a decision")
            if duty.shift != Shift.AFTER_HOURS:
                raise InvalidTransition("the daytime approvers are on duty; they decide this proposal")
            if workflow.override_after_hours_group_id == workflow.approver_group_id:
                raise InvalidTransition("the after-hours group already approves this workflow; nothing is blocked")
        elif block == OverrideBlock.CONFLICT and proposal is not None:
            if proposal.status != ProposalStatus.CONFLICT:
                raise InvalidTransition(f"proposal {proposal.pk} is {proposal.status}, not in conflict")

        target = {
            OverrideScope.PROPOSAL: Q(proposal=proposal),
            OverrideScope.BATCH: Q(batch=batch),
            OverrideScope.WORKFLOW: Q(workflow=workflow),
        }[OverrideScope(scope)]
        current = (
            Override.objects.filter(target, scope=scope, block=block, revoked_at__isnull=True, expires_at__gt=now)
            .select_related("granted_by")
            .first()
        )
        if current is not None:
            raise InvalidTransition(
                f"{current.granted_by.get_username()} already overrides this until "
                f"{current.expires_at:%H:%M:%S} UTC; revoke that override first"
            )

        override = Override.objects.create(
            workflow=workflow,
            scope=scope,
            batch=batch if scope in (OverrideScope.BATCH, OverrideScope.PROPOSAL) else None,
            proposal=proposal if scope == OverrideScope.PROPOSAL else None,
            block=block,
            reason=reason,
            granted_by=user,
            granted_group=duty.group.name,
            granted_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
        audit_record(
            action="override.granted",
            actor=Actor.user(user),
            reason=reason,
            details=_details(
                override,
                minutes=minutes,
                expires_at=override.expires_at,
                duty_group=duty.group.name,
                shift=duty.shift,
            ),
            **_event_target(override),
        )
        notice_record(
            event="override_granted",
            workflow=workflow,
            subject=f"Override granted: {override.get_block_display().lower()} on {override.target_label} "
            f"until {override.expires_at:%H:%M} UTC",
            body=f"{user_label(user)} ({duty.group.name}, on duty) lifted {override.get_block_display().lower()} "
            f"on {override.target_label} for {minutes} minutes, until {override.expires_at:%Y-%m-%d %H:%M} UTC.\n"
            f"Reason: {reason}",
            dedupe_key=f"override-granted:{override.pk}",
        )
        apply_queue(proposal_ids=_held_approved(override))
    return override


def override_revoke(*, override: Override, user: User, note: str = "") -> Override:
    """End an override early. Its granter, or anyone in the group on duty now, may do this."""
    with transaction.atomic():
        override = (
            Override.objects.select_for_update(of=("self",))
            .select_related("workflow__override_day_group", "workflow__override_after_hours_group", "proposal")
            .get(pk=override.pk)
        )
        now = timezone.now()
        if override.revoked_at is not None:
            raise InvalidTransition(f"override {override.pk} was already revoked")
        if override.expires_at <= now:
            raise InvalidTransition(f"override {override.pk} already expired at {override.expires_at:%H:%M:%S} UTC")
        duty = override_duty(workflow=override.workflow, at=now)
        if not may_act_under(user=user, override=override, duty=duty, group_ids=group_ids_of(user)):
            raise NotAllowed("only the person who granted it or the group on override duty may revoke it")
        override.revoked_at, override.revoked_by = now, user
        override.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(
            action="override.revoked",
            actor=Actor.user(user),
            reason=note.strip(),
            details=_details(override, expires_at=override.expires_at),
            **_event_target(override),
        )
    return override


def override_use(*, override: Override, actor: Actor, what: str, proposal: Proposal | None = None) -> Override:
    """Record that `override` lifted its block for `what`. Refused once it has expired or was
    revoked, read at this moment under a lock, whatever the beat task has marked so far."""
    with transaction.atomic():
        locked = (
            Override.objects.select_for_update(of=("self",))
            .select_related("workflow", "proposal", "granted_by")
            .get(pk=override.pk)
        )
        now = timezone.now()
        if locked.revoked_at is not None:
            raise InvalidTransition(f"override {locked.pk} was revoked; the block is back")
        if not locked.is_active(at=now):
            raise InvalidTransition(
                f"override {locked.pk} expired at {locked.expires_at:%H:%M:%S} UTC; the block is back"
            )
        Override.objects.filter(pk=locked.pk).update(use_count=F("use_count") + 1)
        target = _event_target(locked)
        if proposal is not None:
            target |= {
                "proposal_id": proposal.pk,
                "batch_id": proposal.batch_id,
                "record_type": proposal.record_type,
                "record_id": proposal.record_id,
            }
        audit_record(
            action="override.used",
            actor=actor,
            reason=locked.reason,
            approver_label=user_label(locked.granted_by),
            details=_details(locked, what=what, granted_by=locked.granted_by.get_username()),
            **target,
        )
    locked.use_count += 1
    return locked


def override_lift(
    *,
    block: str,
    actor: Actor,
    what: str,
    workflow: Workflow | None = None,
    batch: Batch | None = None,
    proposal: Proposal | None = None,
) -> Override | None:
    """The override that lifts `block` for the objects given (see `override_active`), with its use
    recorded; None when no override is in force, so the block holds."""
    override = override_active(block=block, workflow=workflow, batch=batch, proposal=proposal)
    if override is None:
        return None
    try:
        return override_use(override=override, actor=actor, what=what, proposal=proposal)
    except InvalidTransition:
        return None


@dataclass(frozen=True)
class StopHold:
    """The engaged switches over one proposal's write: the one that still holds it (None when every
    one is lifted, or none is engaged) and the overrides that lift the others."""

    engaged: tuple[StopSwitch, ...]
    switch: StopSwitch | None
    lifting: tuple[Override, ...]


def override_stop_hold(
    *, proposal: Proposal, lock: bool = True, engaged_now: Sequence[StopSwitch] | None = None
) -> StopHold:
    """Which engaged stop switch still holds `proposal`'s write, read now; nothing is recorded.

    The global stop always holds. A workflow's stop is lifted by an override of the workflow, the
    batch or the proposal; a batch's stop by an override of the batch or the proposal. With `lock`
    the engaged switches are locked, so none is released while the write that read them is in flight.
    `engaged_now` is the switches over the proposal, when the caller has just read them (with
    `stops_engaged_query`, in the write's transaction).
    """
    if engaged_now is None:
        engaged_now = stops_engaged_over(workflow_id=proposal.workflow_id, batch_id=proposal.batch_id, lock=lock)
    engaged = tuple(engaged_now)
    if not engaged:
        return StopHold(engaged, None, ())
    if engaged[0].scope == StopScope.GLOBAL:
        return StopHold(engaged, engaged[0], ())
    lifting: dict[int, Override] = {}
    for switch in engaged:
        override = override_active(
            block=OverrideBlock.STOP_SWITCH,
            workflow=proposal.workflow if switch.scope == StopScope.WORKFLOW else None,
            batch=proposal.batch,
            proposal=proposal,
        )
        if override is None:
            return StopHold(engaged, switch, ())
        lifting[override.pk] = override
    return StopHold(engaged, None, tuple(lifting.values()))


@dataclass(frozen=True)
class CanaryHold:
    """Whether the canary cap for today holds the write (the canary workflow's, or a live workflow's
    prompt version not promoted yet), the override that lifts it, and why it waits."""

    reached: bool
    lifting: Override | None
    reason: str = ""

    @property
    def holds(self) -> bool:
        return self.reached and self.lifting is None


def override_canary_hold(*, proposal: Proposal, prompt_held: bool | None = None) -> CanaryHold:
    """The canary cap over `proposal`'s write, read now (its own, its batch's or its workflow's
    override lifts it); nothing is recorded. On a canary workflow it is the workflow's cap; on a live
    one, the cap of a prompt version not promoted yet. `prompt_held`: whether its prompt version is
    held, when the caller has read it (the worker, under the release's lock)."""
    workflow = proposal.workflow
    if workflow.stage == Stage.CANARY:
        if not canary_cap_reached(workflow=workflow):
            return CanaryHold(False, None)
        reason = CANARY_CAP_REASON
    elif workflow.stage == Stage.LIVE:
        if prompt_held is None:
            prompt_held = (workflow.pk, proposal.prompt_version) in prompt_releases_held(workflow_ids=[workflow.pk])
        limit = workflow.canary_daily_limit
        if not prompt_held or (
            prompt_writes_today(workflow_slug=workflow.slug, prompt_version=proposal.prompt_version) < limit
        ):
            return CanaryHold(False, None)
        reason = prompt_hold_reason(workflow_slug=workflow.slug, prompt_version=proposal.prompt_version, limit=limit)
    else:
        return CanaryHold(False, None)
    override = override_active(
        block=OverrideBlock.CANARY_CAP, workflow=workflow, batch=proposal.batch, proposal=proposal
    )
    return CanaryHold(True, override, reason)


_APPLY_USES = {
    OverrideBlock.STOP_SWITCH: ("write applied under a stop", "checked under a stop: in conflict, nothing written"),
    OverrideBlock.CANARY_CAP: (
        "write applied beyond the canary daily cap",
        "checked beyond the canary daily cap: in conflict, nothing written",
    ),
}


def override_record_apply(
    *, overrides: Sequence[Override], actor: Actor, proposal: Proposal, written: bool = True
) -> bool:
    """Record that each override let `proposal` past its block: the write it let through, or the
    conflict found instead. False, recording nothing, when one has expired or been revoked since it
    was read: its block is back."""
    try:
        with transaction.atomic():
            for override in overrides:
                applied, conflict = _APPLY_USES[OverrideBlock(override.block)]
                override_use(override=override, actor=actor, what=applied if written else conflict, proposal=proposal)
    except InvalidTransition:
        return False
    return True


def override_lift_for_decision(*, proposal: Proposal, user: User) -> Override | None:
    """The override that lets `user`, of the after-hours group, decide a proposal that waits for
    the daytime approvers; its use is recorded. None when `user` may not decide it this way."""
    group_ids = group_ids_of(user)
    if not may_decide_after_hours(user=user, workflow=proposal.workflow, proposal=proposal, group_ids=group_ids):
        return None
    return override_lift(
        block=OverrideBlock.AFTER_HOURS_APPROVAL,
        actor=Actor.user(user),
        what="decided while the daytime approvers were off duty",
        proposal=proposal,
    )


def override_expire_due(*, limit: int = EXPIRE_CHUNK) -> int:
    """Mark overrides whose time is up and record `override.expired` for each. Returns how many."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            Override.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(expires_at__lte=now, revoked_at__isnull=True, expired_recorded_at__isnull=True)
            .select_related("workflow", "proposal", "granted_by")
            .order_by("expires_at")[:limit]
        )
        if not due:
            return 0
        Override.objects.filter(pk__in=[o.pk for o in due]).update(expired_recorded_at=now)
        actor = Actor.system("override-expiry")
        audit_record_many(
            EventData(
                action="override.expired",
                actor=actor,
                reason=override.reason,
                details=_details(
                    override, expires_at=override.expires_at, granted_by=override.granted_by.get_username()
                ),
                **_event_target(override),
            )
            for override in due
        )
    return len(due)


def _review(*, override: Override, user: User, verdict: str, note: str) -> Override:
    with transaction.atomic():
        override = (
            Override.objects.select_for_update(of=("self",))
            .select_related("workflow", "proposal", "granted_by")
            .get(pk=override.pk)
        )
        if override.review != OverrideReview.PENDING:
            raise InvalidTransition(f"override {override.pk} was already {override.review}")
        if refusal := review_refusal(user=user, override=override, group_ids=group_ids_of(user)):
            raise NotAllowed(refusal)
        note = reasons.OVERRIDE_FLAG.clean(note) if verdict == OverrideReview.FLAGGED else note.strip()
        override.review, override.reviewed_by, override.reviewed_at = verdict, user, timezone.now()
        override.review_note = note
        override.save(update_fields=["review", "reviewed_by", "reviewed_at", "review_note"])
        audit_record(
            action=f"override.{verdict}",
            actor=Actor.user(user),
            reason=note,
            details=_details(override, granted_by=override.granted_by.get_username()),
            **_event_target(override),
        )
    return override


def override_acknowledge(*, override: Override, user: User, note: str = "") -> Override:
    """The morning review: an approver has looked at the override and accepts it."""
    return _review(override=override, user=user, verdict=OverrideReview.ACKNOWLEDGED, note=note)


def override_flag(*, override: Override, user: User, note: str) -> Override:
    """The morning review: an approver has looked at the override and raises it, saying why."""
    return _review(override=override, user=user, verdict=OverrideReview.FLAGGED, note=note)
