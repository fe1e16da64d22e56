"""Who may override: the group on override duty now lifts a block for a while, never over a change
they asked for; the person who granted an override, or the group on duty, ends it early; the
workflow's approvers, other than the granter, review it the next morning; and the after-hours group
decides what waits for the daytime approvers while an override lets it.

The blocked page, the override pages, the review screen and the services all ask here. A page reads
the person's groups once (`group_ids_of`) and passes them to each question.
"""

from django.contrib.auth.models import Group

from approvals.models import Batch, Override, Proposal, ProposalStatus, Workflow
from approvals.requesters import asked_for_by, requester_reason, started_batch
from approvals.workflows.rights import Viewer
from approvals.workflows.schedule import Duty

_OPEN = (ProposalStatus.PENDING, ProposalStatus.APPROVED, ProposalStatus.CONFLICT)


def group_ids_of(user: Viewer) -> set[int]:
    if not user.is_authenticated:
        return set()
    return set(Group.objects.filter(user=user.pk).values_list("pk", flat=True))


def on_duty(*, duty: Duty, group_ids: set[int]) -> bool:
    """Whether someone in these groups is on override duty now (see `schedule.override_duty`)."""
    return duty.group is not None and duty.group.pk in group_ids


def duty_refusal(*, workflow: Workflow, duty: Duty, group_ids: set[int]) -> str:
    """Why someone in these groups may not override a block of `workflow` now; '' when they may."""
    if duty.group is None:
        return f"no group is on override duty for workflow {workflow.slug}"
    if not on_duty(duty=duty, group_ids=group_ids):
        until = f" until {duty.until:%Y-%m-%d %H:%M} UTC" if duty.until else ""
        return f"{duty.group.name} is on override duty{until}; you are not in that group"
    return ""


def may_override_proposal(*, user: Viewer, proposal: Proposal, duty: Duty, group_ids: set[int]) -> bool:
    """May lift a block of this one proposal now: on duty, and not the person who asked for it."""
    return on_duty(duty=duty, group_ids=group_ids) and not requester_reason(proposal=proposal, user=user)


def asked_for_any(
    *, user: Viewer, workflow: Workflow, batch: Batch | None = None, proposal: Proposal | None = None
) -> bool:
    """Whether `user` asked for the changes an override of this proposal, batch or workflow would let
    through: the proposal itself, the batch they started or an open proposal of it, or any open
    proposal of the workflow."""
    if proposal is not None:
        return bool(requester_reason(proposal=proposal, user=user))
    open_requests = Proposal.objects.filter(asked_for_by(user), status__in=_OPEN)
    if batch is not None:
        return started_batch(batch=batch, user=user) or open_requests.filter(batch=batch).exists()
    return open_requests.filter(workflow=workflow).exists()


def may_decide_after_hours(*, user: Viewer, workflow: Workflow, proposal: Proposal, group_ids: set[int]) -> bool:
    """In the workflow's after-hours group and not the proposal's requester: may decide it while an
    after-hours override of it is in force."""
    return (
        workflow.override_after_hours_group_id is not None
        and workflow.override_after_hours_group_id in group_ids
        and not requester_reason(proposal=proposal, user=user)
    )


def may_act_under(*, user: Viewer, override: Override, duty: Duty, group_ids: set[int]) -> bool:
    """Its granter, or anyone on duty now, may end an override early, and write a proposal in conflict
    under a conflict override."""
    return override.granted_by_id == user.pk or on_duty(duty=duty, group_ids=group_ids)


def review_refusal(*, user: Viewer, override: Override, group_ids: set[int]) -> str:
    """Why `user` may not review `override` the next morning; '' when they may."""
    if override.workflow.approver_group_id not in group_ids:
        return f"only the approver group of {override.workflow.slug} reviews its overrides"
    if override.granted_by_id == user.pk:
        return "you granted this override; another approver reviews it"
    return ""
