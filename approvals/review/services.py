"""Deciding proposals: approve, reject, the claim that says who is looking, and matched groups.

Each decision locks the proposal, checks that this person may take this step now, writes, and
records its audit event in the same transaction; approving queues the apply task on commit.
A refused decision writes nothing but its `proposal.decision_refused` security event, so that
transaction commits and the refusal stays on the trail.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from approvals import reasons
from approvals.jobs import apply_queue
from approvals.models import Action, Batch, OverrideBlock, Proposal, ProposalApproval, ProposalStatus
from approvals.overrides.selectors import proposal_overrides_for
from approvals.overrides.services import override_lift, override_lift_for_decision
from approvals.requesters import requester_reason
from approvals.review.groups import GroupKey, batch_groups
from approvals.review.rights import decide_right, needs_two_approvals, user_may_review
from approvals.review.selectors import stale_fields
from approvals.review.sight import group_shown, proposal_shown, unseen
from approvals.stops.breaker import breaker_check
from approvals.workflows.selectors import WritePolicy, write_policies, write_policy
from audit.services import Actor, audit_record, user_label
from core.errors import ApplicationError, InvalidTransition, NotAllowed, NotFound
from records.store import RecordNotFound, RecordRef, get_store

CLAIM_DURATION = timedelta(minutes=5)


@dataclass(frozen=True)
class Refusal:
    code: str  # requester, no_permission, already_decided, changed, unseen, repeat_approval, stale, policy
    error: ApplicationError
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    proposal: Proposal
    refusal: Refusal | None = None
    first_of_two: bool = False

    @property
    def approved(self) -> bool:
        return self.refusal is None and self.proposal.status == ProposalStatus.APPROVED


@dataclass
class GroupResult:
    decided: list[int] = field(default_factory=list)
    first_of_two: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


def _lock(proposal_id: int) -> Proposal:
    proposal = (
        Proposal.objects.select_for_update(of=("self",))
        .select_related("workflow", "batch", "decided_by")
        .filter(pk=proposal_id)
        .first()
    )
    if proposal is None:
        raise NotFound(f"no proposal {proposal_id}")
    return proposal


def _already_decided(proposal: Proposal) -> str:
    text = f"proposal {proposal.pk} was already {proposal.get_status_display().lower()}"
    if proposal.decided_by is not None:
        text += f" by {user_label(proposal.decided_by)}"
    return text + "; nothing was changed"


def _unseen_refusal(*, proposal: Proposal, reviewer: User, shown_token: str | None) -> Refusal | None:
    """A decision from a page that did not show `reviewer` this proposal as it is now, long enough.
    None when it did, or when no page was involved (`shown_token` None: the demo's own decisions)."""
    if shown_token is None:
        return None
    why = unseen(token=shown_token, shown=proposal_shown(proposal), user=reviewer)
    if why is None:
        return None
    return Refusal("unseen", InvalidTransition(why.message(f"proposal {proposal.pk}")), {"sight": str(why)})


def _refusal(*, proposal: Proposal, reviewer: User, expected_revision: int | None) -> tuple[Refusal | None, bool]:
    """Why `reviewer` may not decide `proposal` now (None when they may), and whether they decide
    it under an after-hours override rather than as one of its reviewers."""
    right = decide_right(user=reviewer, proposal=proposal)
    if right.requester:
        return Refusal("requester", NotAllowed(f"{right.requester}, so someone else must decide it")), False
    if not right.may:
        return Refusal(
            "no_permission", NotAllowed(f"you may not review proposals of the workflow {proposal.workflow.slug}")
        ), False
    by_override = not right.reviewer
    if proposal.status != ProposalStatus.PENDING:
        return Refusal("already_decided", InvalidTransition(_already_decided(proposal))), by_override
    if expected_revision is not None and expected_revision != proposal.revision:
        return Refusal(
            "changed",
            InvalidTransition(f"proposal {proposal.pk} changed since you opened it; look at it again before deciding"),
        ), by_override
    return None, by_override


def _lift_for_decision(proposal: Proposal, reviewer: User) -> tuple[dict[str, Any], Refusal | None]:
    """For someone deciding under an after-hours override: record its use, now that the decision is
    allowed, and name it in the decision's event. Refused when it ended a moment ago."""
    override = override_lift_for_decision(proposal=proposal, user=reviewer)
    if override is None:
        return {}, Refusal(
            "no_permission",
            NotAllowed(f"the override that let you decide proposal {proposal.pk} has ended; the block is back"),
        )
    return {"override_id": override.pk, "override_reason": override.reason}, None


def _record_refusal(*, proposal: Proposal, reviewer: User, attempted: str, refusal: Refusal) -> None:
    audit_record(
        action="proposal.decision_refused",
        actor=Actor.user(reviewer),
        reason=refusal.error.message,
        details={
            "attempted": attempted,
            "refusal": refusal.code,
            "status": proposal.status,
            "revision": proposal.revision,
            **refusal.details,
        },
        **proposal.trail_fields(),
    )


def _go_ahead(
    proposal: Proposal, reviewer: User, attempted: str, refusal: Refusal | None, by_override: bool
) -> tuple[dict[str, Any], Refusal | None]:
    """The last word on a decision: a refusal goes on the trail; one taken under an after-hours override
    uses it now (and is refused if it just ended). Returns what the decision's event says of the override."""
    lifted: dict[str, Any] = {}
    if refusal is None and by_override:
        lifted, refusal = _lift_for_decision(proposal, reviewer)
    if refusal is not None:
        _record_refusal(proposal=proposal, reviewer=reviewer, attempted=attempted, refusal=refusal)
    return lifted, refusal


def _advance(proposal: Proposal, now: datetime) -> None:
    """A step was taken: the revision moves on (pages drawn before it are stale) and the claim ends."""
    proposal.claimed_by = None
    proposal.claimed_until = None
    proposal.updated_at = now
    proposal.revision += 1


def _approve_one(
    *,
    proposal_id: int,
    reviewer: User,
    note: str,
    expected_revision: int | None,
    shown_token: str | None = None,
    require_fresh: bool = False,
    send: bool = True,
    details: dict[str, Any] | None = None,
    policy: WritePolicy | None = None,
) -> Outcome:
    with transaction.atomic():
        proposal = _lock(proposal_id)
        earlier = list(proposal.approvals.select_related("user").order_by("approved_at", "id"))
        refusal, by_override = _refusal(proposal=proposal, reviewer=reviewer, expected_revision=expected_revision)
        if refusal is None and any(approval.user_id == reviewer.pk for approval in earlier):
            refusal = Refusal(
                "repeat_approval",
                InvalidTransition(
                    f"you already gave the first approval of proposal {proposal.pk}; the second must come from "
                    "someone else"
                ),
            )
        if refusal is None:
            if policy is None:
                policy = write_policy(workflow=proposal.workflow)
            if why := policy.refusal(proposal=proposal, reviewed=True):
                # The workflow's file changed since the AI proposed it; no one can approve what it may not write.
                refusal = Refusal("policy", NotAllowed(f"{why}; reject proposal {proposal.pk}"))
        if refusal is None and require_fresh:
            try:
                state = get_store(proposal.record_type).fetch(RecordRef(proposal.record_type, proposal.record_id))
            except RecordNotFound:
                state = None
            stale = stale_fields(proposal=proposal, state=state)
            if stale:
                refusal = Refusal(
                    "stale",
                    InvalidTransition(
                        f"the record no longer holds what the AI saw ({', '.join(stale)}); "
                        f"review proposal {proposal.pk} on its own"
                    ),
                )
        refusal = refusal or _unseen_refusal(proposal=proposal, reviewer=reviewer, shown_token=shown_token)
        lifted, refusal = _go_ahead(proposal, reviewer, "approve", refusal, by_override)
        if refusal is not None:
            return Outcome(proposal, refusal=refusal)
        details = {**(details or {}), **lifted}

        now = timezone.now()
        ProposalApproval.objects.create(proposal=proposal, user=reviewer, approved_at=now, note=note)
        approvers = [approval.user for approval in earlier] + [reviewer]
        _advance(proposal, now)
        if needs_two_approvals(proposal=proposal) and not earlier:
            proposal.save(update_fields=["revision", "claimed_by", "claimed_until", "updated_at"])
            audit_record(
                action="proposal.approval_recorded",
                actor=Actor.user(reviewer),
                approver_label=user_label(reviewer),
                decided_at=now,
                reason=note,
                details={"approvals": 1, "needed": 2, "revision": proposal.revision, **(details or {})},
                **proposal.trail_fields(),
            )
            return Outcome(proposal, first_of_two=True)

        proposal.status = ProposalStatus.APPROVED
        proposal.approved_at = now
        proposal.decided_at = now
        proposal.decided_by = reviewer
        proposal.decision_note = note
        proposal.save(
            update_fields=[
                "status", "approved_at", "decided_at", "decided_by", "decision_note",
                "revision", "claimed_by", "claimed_until", "updated_at",
            ]
        )  # fmt: skip
        audit_record(
            action="proposal.approved",
            actor=Actor.user(reviewer),
            approver_label=", ".join(user_label(user) for user in approvers),
            decided_at=now,
            reason=note,
            details={
                "approvers": [user.get_username() for user in approvers],
                "action": proposal.action,
                "changes": proposal.changes,
                "merge_into": proposal.merge_into,
                "revision": proposal.revision,
                **(details or {}),
            },
            **proposal.trail_fields(),
        )
        breaker_check(workflow=proposal.workflow, prompt_version=proposal.prompt_version)
        if send:
            apply_queue(proposal_ids=[proposal.pk])
        return Outcome(proposal)


def _reject_one(
    *,
    proposal_id: int,
    reviewer: User,
    reason: str,
    expected_revision: int | None,
    shown_token: str | None = None,
    details: dict[str, Any] | None = None,
    policy: WritePolicy | None = None,
) -> Outcome:
    with transaction.atomic():
        proposal = _lock(proposal_id)
        refusal, by_override = _refusal(proposal=proposal, reviewer=reviewer, expected_revision=expected_revision)
        refusal = refusal or _unseen_refusal(proposal=proposal, reviewer=reviewer, shown_token=shown_token)
        lifted, refusal = _go_ahead(proposal, reviewer, "reject", refusal, by_override)
        if refusal is not None:
            return Outcome(proposal, refusal=refusal)
        details = {**(details or {}), **lifted}
        now = timezone.now()
        _advance(proposal, now)
        proposal.status = ProposalStatus.REJECTED
        proposal.decided_at = now
        proposal.decided_by = reviewer
        proposal.decision_note = reason
        proposal.save(
            update_fields=[
                "status", "decided_at", "decided_by", "decision_note",
                "revision", "claimed_by", "claimed_until", "updated_at",
            ]
        )  # fmt: skip
        audit_record(
            action="proposal.rejected",
            actor=Actor.user(reviewer),
            # Named apart from the approver column, which only ever names who approved.
            decided_at=now,
            reason=reason,
            details={"rejected_by": user_label(reviewer), "revision": proposal.revision, **(details or {})},
            **proposal.trail_fields(),
        )
        breaker_check(workflow=proposal.workflow, prompt_version=proposal.prompt_version)
        return Outcome(proposal)


def proposal_approve(
    *,
    proposal: Proposal,
    reviewer: User,
    note: str = "",
    expected_revision: int | None = None,
    shown_token: str | None = None,
) -> Outcome:
    """Approve `proposal`, or give the first of two approvals where the workflow needs two people.

    Refused (and recorded as a security event) for the requester, without the workflow's review
    permission, once decided, when `expected_revision` is not the proposal's revision, or when
    `shown_token` is not that of a page that showed `reviewer` this proposal as it is now, at least
    the settle time ago (`review.sight`). Every decision taken on a page passes its token, an empty
    one if the page sent none; only a decision no page was involved in (the demo's) passes None.
    """
    outcome = _approve_one(
        proposal_id=proposal.pk,
        reviewer=reviewer,
        note=(note or "").strip(),
        expected_revision=expected_revision,
        shown_token=shown_token,
    )
    if outcome.refusal is not None:
        raise outcome.refusal.error
    return outcome


def proposal_reject(
    *,
    proposal: Proposal,
    reviewer: User,
    reason: str,
    expected_revision: int | None = None,
    shown_token: str | None = None,
) -> Outcome:
    """Reject `proposal` with a reason. One rejection ends it, even where approving needs two people.
    Refused as `proposal_approve` is, `shown_token` included."""
    reason = reasons.REJECTION.clean(reason)
    outcome = _reject_one(
        proposal_id=proposal.pk,
        reviewer=reviewer,
        reason=reason,
        expected_revision=expected_revision,
        shown_token=shown_token,
    )
    if outcome.refusal is not None:
        raise outcome.refusal.error
    return outcome


def proposal_claim(*, proposal: Proposal, reviewer: User, duration: timedelta = CLAIM_DURATION) -> Proposal:
    """Mark `proposal` as being looked at by `reviewer` for a few minutes, so others pass it by.

    Someone else's live claim stands (the proposal comes back with it). A reviewer holds one claim
    at a time; a decision or the end of `duration` releases it.
    """
    with transaction.atomic():
        locked = _lock(proposal.pk)
        if not decide_right(user=reviewer, proposal=locked).may:
            raise NotAllowed("only a reviewer who did not ask for this change may claim it")
        if locked.status != ProposalStatus.PENDING:
            raise InvalidTransition(f"proposal {locked.pk} is {locked.get_status_display().lower()}; nothing to claim")
        now = timezone.now()
        held_by_other = (
            locked.claimed_by_id not in (None, reviewer.pk)
            and locked.claimed_until is not None
            and locked.claimed_until > now
        )
        if held_by_other:
            return Proposal.objects.select_related("claimed_by").get(pk=locked.pk)
        Proposal.objects.filter(claimed_by=reviewer).exclude(pk=locked.pk).update(claimed_by=None, claimed_until=None)
        locked.claimed_by = reviewer
        locked.claimed_until = now + duration
        locked.save(update_fields=["claimed_by", "claimed_until"])
    return locked


def _refuse_group(
    *,
    batch: Batch,
    reviewer: User,
    attempted: str,
    code: str,
    error: ApplicationError,
    details: dict[str, Any] | None = None,
) -> NoReturn:
    with transaction.atomic():
        audit_record(
            action="proposal.decision_refused",
            actor=Actor.user(reviewer),
            batch_id=batch.pk,
            workflow_slug=batch.workflow.slug,
            reason=error.message,
            details={"attempted": attempted, "refusal": code, **(details or {})},
        )
    raise error


def proposal_group_decide(
    *,
    batch: Batch,
    key: GroupKey,
    reviewer: User,
    approve: bool,
    expected_ids: Sequence[int],
    note: str = "",
    reason: str = "",
    shown_token: str | None = None,
) -> GroupResult:
    """Approve or reject a matched group of a batch's proposals, each decided and audited on its own.

    The group is worked out again now; if it is no longer exactly `expected_ids` (what the reviewer
    was shown), nothing is decided, nor when `shown_token` is not that of a page that showed
    `reviewer` those proposals at least the settle time ago. Stale proposals never belong to a group.
    """
    attempted = "approve_group" if approve else "reject_group"
    if not approve:
        reason = reasons.REJECTION.clean(reason)
    if not user_may_review(user=reviewer, workflow=batch.workflow):
        _refuse_group(
            batch=batch,
            reviewer=reviewer,
            attempted=attempted,
            code="no_permission",
            error=NotAllowed(f"you may not review proposals of the workflow {batch.workflow.slug}"),
        )
    shown = group_shown(batch_id=batch.pk, ids=expected_ids)
    if shown_token is not None and (why := unseen(token=shown_token, shown=shown, user=reviewer)):
        _refuse_group(
            batch=batch,
            reviewer=reviewer,
            attempted=attempted,
            code="unseen",
            error=InvalidTransition(why.message("this group")),
            details={"sight": str(why)},
        )
    group = batch_groups(user=reviewer, batch=batch).group(key)
    current = group.ids if group else []
    if sorted(current) != sorted(expected_ids):
        _refuse_group(
            batch=batch,
            reviewer=reviewer,
            attempted=attempted,
            code="changed",
            error=InvalidTransition(
                f"this group changed since you opened it: it held {len(expected_ids)} proposals and now holds "
                f"{len(current)}; look at it again"
            ),
        )
    result = GroupResult()
    approved: list[int] = []
    details = {"group": {"batch": batch.pk, "size": len(current)}}
    policy = write_policies(workflow_ids=[batch.workflow_id]).get(batch.workflow_id) if approve else None
    for proposal_id in current:
        if approve:
            outcome = _approve_one(
                proposal_id=proposal_id,
                reviewer=reviewer,
                note=(note or "").strip(),
                expected_revision=None,
                require_fresh=True,
                send=False,
                details=details,
                policy=policy,
            )
        else:
            outcome = _reject_one(
                proposal_id=proposal_id, reviewer=reviewer, reason=reason, expected_revision=None, details=details
            )
        if outcome.refusal is not None:
            result.refused.append((proposal_id, outcome.refusal.error.message))
        elif outcome.first_of_two:
            result.first_of_two.append(proposal_id)
        else:
            result.decided.append(proposal_id)
            if outcome.approved:
                approved.append(proposal_id)
    apply_queue(proposal_ids=approved)
    return result


def _refuse_unseen(*, proposal_id: int, user: User, shown_token: str, attempted: str) -> int:
    """The revision of the proposal that `shown_token`'s page showed `user` long enough; otherwise
    the refusal goes on the trail and is raised."""
    with transaction.atomic():
        proposal = _lock(proposal_id)
        refusal = _unseen_refusal(proposal=proposal, reviewer=user, shown_token=shown_token)
        if refusal is not None:
            _record_refusal(proposal=proposal, reviewer=user, attempted=attempted, refusal=refusal)
    if refusal is not None:
        raise refusal.error
    return proposal.revision


def proposal_force_apply(
    *, proposal: Proposal, user: User, expected_version: int, note: str = "", shown_token: str | None = None
) -> Proposal:
    """Write a proposal in conflict over what the record holds now, by a person's deliberate choice.

    Needs a conflict override of this proposal that `user` may use (granted to the group on duty
    now; never by or for the person who asked for it). The record's current values, at the version
    `user` looked at, become the proposal's new base, and it is approved again: the worker writes it
    through a Change like any other, under the same stop switches and canary cap, so it is audited
    and can be undone. If the record changed again since `expected_version`, nothing happens; nor
    when `shown_token` is not that of a page that showed `user` the proposal long enough.
    """
    seen_revision = None
    if shown_token is not None:
        seen_revision = _refuse_unseen(proposal_id=proposal.pk, user=user, shown_token=shown_token, attempted="force")
    with transaction.atomic():
        proposal = _lock(proposal.pk)
        if seen_revision is not None and proposal.revision != seen_revision:
            raise InvalidTransition(f"proposal {proposal.pk} changed since you opened it; look at it again")
        why = requester_reason(proposal=proposal, user=user)
        if why:
            raise NotAllowed(f"{why}, so someone else must choose to write it over the record")
        if proposal.status != ProposalStatus.CONFLICT:
            raise InvalidTransition(
                f"proposal {proposal.pk} is {proposal.get_status_display().lower()}, not in conflict"
            )
        if proposal_overrides_for(user=user, proposal=proposal).conflict is None:
            raise NotAllowed(
                f"writing proposal {proposal.pk} over the current values needs a conflict override in force "
                "that you may use (the group on override duty grants it)"
            )
        ref = RecordRef(proposal.record_type, proposal.record_id)
        try:
            state = get_store(ref.record_type).fetch(ref, lock=True)
        except RecordNotFound:
            raise InvalidTransition(f"{proposal.record_type} {proposal.record_id} no longer exists") from None
        if state.version != expected_version:
            raise InvalidTransition(
                f"{state.ref} changed again since you looked (it is now at version {state.version}, you saw "
                f"{expected_version}); look at it again",
                field="version",
            )
        hidden = "deleted" if state.deleted else "archived" if state.archived else ""
        if hidden and not (proposal.action == Action.DELETE and not state.deleted):
            raise InvalidTransition(f"{state.ref} is {hidden}; nothing can be written over it")
        override = override_lift(
            block=OverrideBlock.CONFLICT,
            actor=Actor.user(user),
            what="chose to write the proposed value over the current one",
            proposal=proposal,
        )
        if override is None:
            raise NotAllowed(f"the conflict override of proposal {proposal.pk} has ended; the block is back")
        seen = {name for name in (proposal.base or {}) if name != "version"}
        if proposal.action == Action.UPDATE:
            seen |= set(proposal.changes or {})
        rebased: dict[str, Any] = {name: state.values.get(name) for name in sorted(seen)}
        if "version" in (proposal.base or {}):
            rebased["version"] = state.version
        before = {"base": proposal.base, "base_version": proposal.base_version}
        proposed = proposal.changes if proposal.action == Action.UPDATE else {"merge_into": proposal.merge_into}
        now = timezone.now()
        proposal.base, proposal.base_version = rebased, state.version
        proposal.status = ProposalStatus.APPROVED
        proposal.last_error = ""
        proposal.apply_attempts = 0
        proposal.revision += 1
        proposal.updated_at = now
        proposal.save(
            update_fields=["base", "base_version", "status", "last_error", "apply_attempts", "revision", "updated_at"]
        )
        audit_record(
            action="proposal.forced",
            actor=Actor.user(user),
            approver_label=user_label(user),
            decided_at=now,
            reason=(note or "").strip() or override.reason,
            details={
                "override_id": override.pk,
                "granted_by": override.granted_by.get_username(),
                "before": before,
                "base": rebased,
                "version": state.version,
                "proposed": proposed,
                "revision": proposal.revision,
            },
            **proposal.trail_fields(),
        )
        apply_queue(proposal_ids=[proposal.pk])
    return proposal
