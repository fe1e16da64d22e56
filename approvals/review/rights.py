"""Who may see and decide proposals: the one answer every view, template and task asks."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from approvals.models import Proposal, ProposalStatus, Workflow
from core.errors import NotFound

Viewer = AbstractBaseUser | AnonymousUser


def workflows_reviewable_by(*, user: Viewer) -> QuerySet[Workflow]:
    """The workflows whose proposals `user` may review: the object permission, directly or by group.

    Being a superuser grants nothing here: each workflow is countersigned by the people given its
    review permission (its approver group), and by nobody else.
    """
    if not user.is_authenticated or not user.is_active:
        return Workflow.objects.none()
    return get_objects_for_user(
        user, "approvals.review_workflow", klass=Workflow, with_superuser=False, accept_global_perms=False
    )


def workflows_overridable_by(*, user: Viewer) -> QuerySet[Workflow]:
    """The workflows whose blocks `user` may override, by schedule: the object permission."""
    if not user.is_authenticated or not user.is_active:
        return Workflow.objects.none()
    return get_objects_for_user(
        user, "approvals.override_workflow", klass=Workflow, with_superuser=False, accept_global_perms=False
    )


def user_may_review(*, user: Viewer, workflow: Workflow) -> bool:
    return workflows_reviewable_by(user=user).filter(pk=workflow.pk).exists()


@dataclass(frozen=True)
class Reviewable:
    """The workflows one person may review, read once per request: id -> (slug, name)."""

    workflows: dict[int, tuple[str, str]]

    @property
    def ids(self) -> list[int]:
        return list(self.workflows)

    def id_of(self, slug: str) -> int | None:
        return next((pk for pk, (known, _) in self.workflows.items() if known == slug), None)


def reviewable_workflows(*, user: Viewer) -> Reviewable:
    rows = workflows_reviewable_by(user=user).order_by("slug").values_list("pk", "slug", "name")
    return Reviewable({pk: (slug, name) for pk, slug, name in rows})


def requester_reason(*, proposal: Proposal, user: Viewer) -> str:
    """Why `user` counts as the requester of `proposal`, as a sentence; empty when they do not."""
    if not user.is_authenticated:
        return ""
    username = user.get_username().casefold()
    if proposal.requested_by_user_id is not None and proposal.requested_by_user_id == user.pk:
        return "You asked for this change"
    if proposal.requested_by and proposal.requested_by.casefold() == username:
        return "You asked for this change"
    if proposal.batch_id is not None and proposal.batch is not None:
        if proposal.batch.requested_by and proposal.batch.requested_by.casefold() == username:
            return f"You started the batch it belongs to ({proposal.batch.name})"
    return ""


def _requested_by_q(user: Viewer) -> Q:
    username = user.get_username()
    return Q(requested_by_user_id=user.pk) | Q(requested_by__iexact=username) | Q(batch__requested_by__iexact=username)


def needs_two_approvals(*, proposal: Proposal) -> bool:
    workflow = proposal.workflow
    if proposal.action in (workflow.two_person_actions or []):
        return True
    return bool(set(proposal.changes or {}) & set(workflow.two_person_fields or []))


def proposal_for_viewer(*, user: Viewer, proposal_id: int, reviewable: Reviewable | None = None) -> Proposal:
    """The proposal, if `user` may review its workflow or asked for it, or may override the workflow's
    blocks and it waits for a decision or is in conflict. Anything else is NotFound."""
    visible = (
        Q(workflow__in=workflows_reviewable_by(user=user)) if reviewable is None else Q(workflow_id__in=reviewable.ids)
    )
    if user.is_authenticated:
        visible |= _requested_by_q(user)
        visible |= Q(
            workflow__in=workflows_overridable_by(user=user),
            status__in=[ProposalStatus.PENDING, ProposalStatus.CONFLICT],
        )
    proposal = (
        Proposal.objects.filter(visible, pk=proposal_id)
        .select_related("workflow", "batch", "service_account", "requested_by_user", "claimed_by", "decided_by")
        .first()
    )
    if proposal is None:
        raise NotFound(f"no proposal {proposal_id} that you may see")
    return proposal
