"""Who may see and decide proposals: the one answer every view, template and service asks.

Who may approve, and when: a workflow's approver group decides its proposals at any hour, in its
hours and outside them; the override schedule says who lifts blocks, not who approves. Outside the
day group's hours, the after-hours group on override duty may also decide one proposal, under an
after-hours override of that proposal (the block `overrides.selectors.waits_for_day_approvers`
names). Nobody else decides (being a superuser grants nothing here), and never the person who
asked for the change. The Blocked page, the review screen and the README say the same.
"""

from dataclasses import dataclass

from django.db.models import Q

from approvals.models import Override, Proposal, ProposalStatus, Workflow
from approvals.overrides.selectors import ProposalOverrides, proposal_overrides_for
from approvals.requesters import asked_for_by, requester_reason
from approvals.workflows.rights import Viewer, workflows_overridable_by, workflows_reviewable_by, workflows_visible_to
from core.errors import NotFound


def user_may_review(*, user: Viewer, workflow: Workflow) -> bool:
    return workflows_reviewable_by(user=user).filter(pk=workflow.pk).exists()


@dataclass(frozen=True)
class Reviewable:
    """The workflows one person may review, read once per request: id -> (slug, name)."""

    workflows: dict[int, tuple[str, str]]

    @property
    def ids(self) -> list[int]:
        return list(self.workflows)

    def covers(self, proposal: Proposal) -> bool:
        return proposal.workflow_id in self.workflows

    def id_of(self, slug: str) -> int | None:
        return next((pk for pk, (known, _) in self.workflows.items() if known == slug), None)


def reviewable_workflows(*, user: Viewer) -> Reviewable:
    rows = workflows_reviewable_by(user=user).order_by("slug").values_list("pk", "slug", "name")
    return Reviewable({pk: (slug, name) for pk, slug, name in rows})


@dataclass(frozen=True)
class DecideRight:
    """How one person may decide one proposal."""

    requester: str  # why they count as the person who asked for it ('' when they do not)
    reviewer: bool  # in the approver group of its workflow
    override: Override | None  # the after-hours override in force that lets them decide it otherwise

    @property
    def may(self) -> bool:
        return not self.requester and (self.reviewer or self.override is not None)


def decide_right(
    *,
    user: Viewer,
    proposal: Proposal,
    reviewable: Reviewable | None = None,
    overrides: ProposalOverrides | None = None,
) -> DecideRight:
    """Whether `user` may decide `proposal` (its workflow and batch read), and as whom. `reviewable`
    and `overrides`, when the caller has them already, save reading them again."""
    requester = requester_reason(proposal=proposal, user=user)
    if reviewable is not None:
        reviewer = reviewable.covers(proposal)
    else:
        reviewer = user_may_review(user=user, workflow=proposal.workflow)
    override = None
    if not reviewer and not requester:
        if overrides is None:
            overrides = proposal_overrides_for(user=user, proposal=proposal)
        override = overrides.decide
    return DecideRight(requester=requester, reviewer=reviewer, override=override)


def needs_two_approvals(*, proposal: Proposal) -> bool:
    workflow = proposal.workflow
    if proposal.action in (workflow.two_person_actions or []):
        return True
    return bool(set(proposal.changes or {}) & set(workflow.two_person_fields or []))


def proposal_for_viewer(*, user: Viewer, proposal_id: int, reviewable: Reviewable | None = None) -> Proposal:
    """The proposal, if `user` may review its workflow, or asked for it in a workflow they may see, or
    may override the workflow's blocks and it waits on one: for a decision, to be written (approved), or
    in conflict. Anything else is NotFound: being named as its requester (a pipeline may name anyone)
    shows nobody a workflow they cannot otherwise see."""
    visible = (
        Q(workflow__in=workflows_reviewable_by(user=user)) if reviewable is None else Q(workflow_id__in=reviewable.ids)
    )
    if user.is_authenticated:
        visible |= asked_for_by(user) & Q(workflow__in=workflows_visible_to(user=user))
        visible |= Q(
            workflow__in=workflows_overridable_by(user=user),
            status__in=[ProposalStatus.PENDING, ProposalStatus.APPROVED, ProposalStatus.CONFLICT],
        )
    proposal = (
        Proposal.objects.filter(visible, pk=proposal_id)
        .select_related("workflow", "batch", "service_account", "requested_by_user", "claimed_by", "decided_by")
        .first()
    )
    if proposal is None:
        raise NotFound(f"no proposal {proposal_id} that you may see")
    return proposal


def shadow_verdict_refusal(*, user: Viewer, proposal: Proposal, reviewable: Reviewable | None = None) -> str:
    """Why `user` may not say whether they would approve the shadowed `proposal` ('' when they may):
    those who would decide it, were its workflow live, do, except the person who asked for it."""
    if requester := requester_reason(proposal=proposal, user=user):
        return requester
    reviewer = (
        reviewable.covers(proposal)
        if reviewable is not None
        else user_may_review(user=user, workflow=proposal.workflow)
    )
    if not reviewer:
        return f"you do not review the workflow {proposal.workflow.slug}"
    return ""
