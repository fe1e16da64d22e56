"""Who sees the whole trail: an auditors group holding `audit.audit_trail`, an exporters group
holding `audit.export_trail`, as an operator would set them up in the admin."""

from django.contrib.auth.models import Group, Permission, User
from guardian.shortcuts import assign_perm

from approvals.models import Workflow
from tests.helpers.factories import GroupFactory


def _group_with(name: str, codename: str) -> Group:
    group = GroupFactory(name=name)
    group.permissions.add(Permission.objects.get(content_type__app_label="audit", codename=codename))
    return group


def make_auditor(user: User, *, export: bool = True) -> User:
    """`user` sees every workflow's trail, records and traces; with `export`, may export it too."""
    user.groups.add(_group_with("auditors", "audit_trail"))
    if export:
        user.groups.add(_group_with("trail-exporters", "export_trail"))
    return user


def make_exporter(user: User) -> User:
    """`user` may export the trail they see, and sees no more for it."""
    user.groups.add(_group_with("trail-exporters", "export_trail"))
    return user


def let_see(user: User, workflow: Workflow) -> User:
    """`user` may see `workflow` (its view permission, through a group), and no more for it."""
    viewers = GroupFactory(name=f"{workflow.slug}-viewers")
    assign_perm("approvals.view_workflow", viewers, workflow)
    user.groups.add(viewers)
    return user
