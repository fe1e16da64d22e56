"""Who may see a workflow, and what the workflow file grants whom.

The file grants its approver group view, review and rollback on the workflow, and its override
groups view and override (see `loading.APPROVER_PERMISSIONS`). Who may decide, override, stop or
undo is answered by the `rights` module of each of those packages, in terms of these grants. Who
may see what of records and the trail is answered here (`viewer_scope`) and handed down to audit
and records through `core.visibility`.
"""

from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from approvals.models import Workflow, WorkflowGroupObjectPermission, WorkflowUserObjectPermission
from audit.services import user_label
from core.visibility import NOTHING, ViewerScope, scope_for
from records.selectors import VISIBILITY

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


# What puts a person in sight of a workflow: what its file grants them (view, review, roll back,
# override); owning it or owning its retention rules (either of their two owners); being an ops
# manager, who may stop and undo any workflow and so must see them all. An `audit_trail` group
# permission sees every workflow and every field. Staff and superuser status grant nothing here:
# permissions are read from groups.
SEEING_PERMISSIONS = ("view_workflow", "review_workflow", "rollback_workflow", "override_workflow")
AUDIT_TRAIL = ("audit", "audit_trail")
EXPORT_TRAIL = ("audit", "export_trail")


def _workflows_in_sight(user_id: int, group_names: set[str]) -> QuerySet[Workflow]:
    if settings.COUNTERSIGN["OPS_MANAGER_GROUP"] in group_names:
        return Workflow.objects.all()
    granted = Q(permission__codename__in=SEEING_PERMISSIONS)
    by_group = WorkflowGroupObjectPermission.objects.filter(granted, group__user=user_id)
    by_user = WorkflowUserObjectPermission.objects.filter(granted, user=user_id)
    return Workflow.objects.filter(
        Q(owner_id=user_id)
        | Q(retention_owner_id=user_id)
        | Q(retention_co_owner_id=user_id)
        | Q(pk__in=by_group.values("content_object"))
        | Q(pk__in=by_user.values("content_object"))
    )


def viewer_scope(user: Viewer) -> ViewerScope:
    """What `user` may see of records and the trail: the workflows in sight and the fields of each
    record type those workflows may read, suggest or write. Two queries (one for an auditor).

    Pages ask it through `core.visibility.scope_for`, which keeps the answer for the request."""
    if not user.is_authenticated or not user.is_active:
        return NOTHING
    user_id = cast(int, user.pk)
    memberships = Group.objects.filter(user=user_id).values_list(
        "name", "permissions__content_type__app_label", "permissions__codename"
    )
    group_names: set[str] = set()
    group_permissions: set[tuple[str, str]] = set()
    for name, app_label, codename in memberships:
        group_names.add(name)
        if codename:
            group_permissions.add((app_label, codename))
    may_export = EXPORT_TRAIL in group_permissions
    if AUDIT_TRAIL in group_permissions:
        return ViewerScope(everything=True, may_export=may_export)
    slugs: set[str] = set()
    fields: dict[str, set[str]] = {}
    rows = (
        _workflows_in_sight(user_id, group_names)
        .order_by()
        .values_list("slug", "policies__record_type", "policies__field")
    )
    for slug, record_type, field in rows:
        slugs.add(slug)
        if record_type and field:
            fields.setdefault(record_type, set()).add(field)
    # Whether a record is archived or deleted, and since when, is shown with the record itself.
    hidden_state = {name for flag in VISIBILITY for name in (flag, f"{flag}_at")}
    return ViewerScope(
        workflow_slugs=frozenset(slugs),
        fields_by_record_type={record_type: frozenset(names | hidden_state) for record_type, names in fields.items()},
        may_export=may_export,
    )


def workflows_visible_to(*, user: Viewer) -> QuerySet[Workflow]:
    """The workflows `user` may see (`viewer_scope`), as a queryset to narrow further."""
    scope = scope_for(user)
    return Workflow.objects.all() if scope.everything else Workflow.objects.filter(slug__in=scope.workflow_slugs)


def workflow_visible_to(*, user: Viewer, workflow: Workflow) -> bool:
    """`workflows_visible_to` for one workflow already read."""
    return scope_for(user).sees_workflow(workflow.slug)


def is_ops_manager(user: Viewer) -> bool:
    """Ops managers (the group COUNTERSIGN["OPS_MANAGER_GROUP"] names) stop and undo anything."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.groups.filter(name=settings.COUNTERSIGN["OPS_MANAGER_GROUP"]).exists()  # type: ignore[union-attr, attr-defined]


def owns_workflow(*, user: Viewer, workflow: Workflow) -> bool:
    """The workflow's owner is the one person who changes its rules and revokes its service accounts."""
    return user.is_authenticated and workflow.owner_id == user.pk


# The retention rules have two owners: the rules owner (`retention_owner`, else the workflow's owner)
# and the second owner (`retention_co_owner`). A change one of them proposes takes effect when the
# other countersigns it; with no second owner named, none can take effect.


def retention_owners(workflow: Workflow) -> list[Any]:
    """The people who own `workflow`'s retention rules: the rules owner, then the second owner if named."""
    return [workflow.rules_owner, *([workflow.retention_co_owner] if workflow.retention_co_owner_id else [])]


def retention_owns_rules(*, user: Viewer, workflow: Workflow) -> bool:
    return user.is_authenticated and any(owner.pk == user.pk for owner in retention_owners(workflow))


def _only_owners(workflow: Workflow, verb: str) -> str:
    names = " and ".join(user_label(owner) for owner in retention_owners(workflow))
    return f"only the owners of {workflow.slug}'s retention rules ({names}) may {verb}"


def retention_proposal_refusal(*, user: Viewer, workflow: Workflow) -> str:
    """Why `user` may not propose a change to `workflow`'s retention rules ("" when they may)."""
    if retention_owns_rules(user=user, workflow=workflow):
        return ""
    return _only_owners(workflow, "change them")


def retention_countersigner(*, workflow: Workflow, proposed_by: Viewer) -> Any:
    """The owner who countersigns a change `proposed_by` made: the other owner, or None when there is
    no other (no second owner named, or the proposer no longer owns the rules)."""
    owners = retention_owners(workflow)
    if len(owners) < 2 or proposed_by.pk not in {owner.pk for owner in owners}:
        return None
    return next(owner for owner in owners if owner.pk != proposed_by.pk)


def retention_countersign_refusal(*, user: Viewer, workflow: Workflow, proposed_by: Viewer) -> str:
    """Why `user` may not countersign a change to `workflow`'s retention rules that `proposed_by`
    proposed ("" when they may)."""
    if not workflow.retention_co_owner_id:
        return (
            f"{workflow.slug} names no second owner of its retention rules, so no change can take effect: "
            "name one with retention_co_owner in the workflow file"
        )
    if user.pk == proposed_by.pk:
        return "you proposed this change: the other owner of the retention rules countersigns it"
    if not retention_owns_rules(user=user, workflow=workflow):
        return _only_owners(workflow, "countersign a change to them")
    if retention_countersigner(workflow=workflow, proposed_by=proposed_by) is None:
        return (
            f"{user_label(proposed_by)}, who proposed this change, no longer owns {workflow.slug}'s retention "
            "rules: withdraw it, and propose it again if it is still wanted"
        )
    return ""


def retention_withdraw_refusal(*, user: Viewer, workflow: Workflow, proposed_by: Viewer) -> str:
    """Why `user` may not withdraw (its proposer) or reject (an owner) a waiting change ("" when they may)."""
    if user.is_authenticated and user.pk == proposed_by.pk:
        return ""
    if retention_owns_rules(user=user, workflow=workflow):
        return ""
    return _only_owners(workflow, "reject a change to them")


def hears_audit_alarms(*, user: Viewer) -> bool:
    """Who is shown that the audit chain was found broken: auditors (the `audit_trail` permission,
    through a group) and the owners of workflows."""
    if not user.is_authenticated or not user.is_active:
        return False
    auditor = Group.objects.filter(
        user=user.pk, permissions__content_type__app_label=AUDIT_TRAIL[0], permissions__codename=AUDIT_TRAIL[1]
    )
    return Workflow.objects.filter(owner_id=user.pk).exists() or auditor.exists()
