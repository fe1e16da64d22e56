"""Reads about workflows: which ones a person may see, and their policies."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Prefetch, Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from approvals.models import FieldPolicy, ProposalStatus, Workflow


def workflow_list_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Workflow]:
    """The workflows `user` may view (object permission, or owning them), with their policies."""
    visible = get_objects_for_user(user, "approvals.view_workflow", klass=Workflow, accept_global_perms=True)
    owned = Q(owner_id=user.pk)
    return (
        Workflow.objects.filter(Q(pk__in=visible.values("pk")) | owned)
        .select_related("owner", "approver_group", "override_day_group", "override_after_hours_group")
        .prefetch_related(Prefetch("policies", queryset=FieldPolicy.objects.order_by("record_type", "field")))
        .annotate(pending_count=Count("proposals", filter=Q(proposals__status=ProposalStatus.PENDING)))
        .order_by("slug")
    )


def workflow_policy_map(*, workflow: Workflow) -> dict[tuple[str, str], str]:
    """(record_type, field) -> access for every field the workflow has a policy on."""
    return {(p.record_type, p.field): p.access for p in workflow.policies.all()}
