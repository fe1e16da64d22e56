"""What holds an approved proposal back from being written, as its review screen says it, and which
block an override of that one proposal would lift. Who may grant that override is
`overrides.rights`'s answer; the override form is the one the Blocked page uses."""

from dataclasses import dataclass

from django.utils import timezone

from approvals.models import OverrideBlock, Proposal, ProposalStatus, Stage, StopScope, Workflow
from approvals.overrides.rights import group_ids_of, may_override_proposal
from approvals.overrides.services import override_canary_hold, override_stop_hold
from approvals.stops.selectors import describe_stop
from approvals.workflows.rights import Viewer
from approvals.workflows.rollout import STAGE_WAIT_REASONS
from approvals.workflows.schedule import override_duty


@dataclass(frozen=True)
class Hold:
    reason: str  # why it is not written now, as the screen says it
    block: str  # what an override of this proposal would lift (a stop switch, the canary cap); '' if none can
    may_override: bool  # the person looking is on override duty, and did not ask for it


def proposal_hold(*, user: Viewer, proposal: Proposal) -> Hold | None:
    """What keeps approved `proposal` from being written now, read without locking; None when
    nothing does (an override in force that lifts its block counts as nothing)."""
    if proposal.status != ProposalStatus.APPROVED:
        return None
    workflow = proposal.workflow
    if workflow.stage in STAGE_WAIT_REASONS:
        return Hold(STAGE_WAIT_REASONS[Stage(workflow.stage)], "", False)
    stop = override_stop_hold(proposal=proposal, lock=False).switch
    if stop is not None and stop.scope == StopScope.GLOBAL:
        return Hold(f"{describe_stop(stop)}. The global stop is released, never overridden", "", False)
    if stop is not None:
        return Hold(describe_stop(stop), OverrideBlock.STOP_SWITCH, _may_override(user, proposal))
    canary = override_canary_hold(proposal=proposal)
    if canary.holds:
        return Hold(canary.reason, OverrideBlock.CANARY_CAP, _may_override(user, proposal))
    return None


def _may_override(user: Viewer, proposal: Proposal) -> bool:
    workflow = Workflow.objects.select_related("override_day_group", "override_after_hours_group").get(
        pk=proposal.workflow_id
    )
    duty = override_duty(workflow=workflow, at=timezone.now())
    return may_override_proposal(user=user, proposal=proposal, duty=duty, group_ids=group_ids_of(user))
