"""Who may see a workflow, and what the workflow file grants whom.

The file grants its approver group view, review and rollback on the workflow, and its override
groups view and override (see `loading.APPROVER_PERMISSIONS`). Who may decide, override, stop or
undo is answered by the `rights` module of each of those packages, in terms of these grants.
"""

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from approvals.models import Workflow

Viewer = AbstractBaseUser | AnonymousUser


def _granted(user: Viewer, codename: str) -> QuerySet[Workflow]:
    # Only the object permission counts: neither a global permission nor being a superuser grants it,
    # because each workflow's file names the people who hold it.
    if not user.is_authenticated or not user.is_active:
        return Workflow.objects.none()
    return get_objects_for_user(
        user, f"approvals.{codename}", klass=Workflow, with_superuser=False, accept_global_perms=False
    )


def workflows_reviewable_by(*, user: Viewer) -> QuerySet[Workflow]:
    """The workflows whose approver group `user` belongs to: they review its proposals."""
    return _granted(user, "review_workflow")


def workflows_overridable_by(*, user: Viewer) -> QuerySet[Workflow]:
    """The workflows whose override groups `user` belongs to, on duty or not."""
    return _granted(user, "override_workflow")


def workflows_undoable_by(*, user: Viewer) -> QuerySet[Workflow]:
    """The workflows whose changes `user` was granted to undo (its approver group)."""
    return _granted(user, "rollback_workflow")


def workflows_visible_to(*, user: Viewer) -> QuerySet[Workflow]:
    """The workflows `user` may see: those they own or keep the retention rules of, and those they
    may view (granted on the workflow or globally; a superuser sees every one)."""
    if not user.is_authenticated or not user.is_active:
        return Workflow.objects.none()
    viewable = get_objects_for_user(user, "approvals.view_workflow", klass=Workflow, accept_global_perms=True)
    return Workflow.objects.filter(
        Q(pk__in=viewable.values("pk")) | Q(owner_id=user.pk) | Q(retention_owner_id=user.pk)
    )


def workflow_visible_to(*, user: Viewer, workflow: Workflow) -> bool:
    """`workflows_visible_to` for one workflow already read."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.pk in (workflow.owner_id, workflow.retention_owner_id):
        return True
    has_perm = user.has_perm  # type: ignore[union-attr, attr-defined]
    return has_perm("approvals.view_workflow") or has_perm("approvals.view_workflow", workflow)


def is_ops_manager(user: Viewer) -> bool:
    """Ops managers (the group COUNTERSIGN["OPS_MANAGER_GROUP"] names) stop and undo anything."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.groups.filter(name=settings.COUNTERSIGN["OPS_MANAGER_GROUP"]).exists()  # type: ignore[union-attr, attr-defined]


def owns_workflow(*, user: Viewer, workflow: Workflow) -> bool:
    """The workflow's owner is the one person who changes its rules and revokes its service accounts."""
    return user.is_authenticated and workflow.owner_id == user.pk
