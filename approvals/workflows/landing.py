"""Where a person lands when they log in: the page with work for them, by what the workflow files
grant them and who is on override duty now.

Ops on call after hours land on Blocked, where what waits for them is; approvers on the review
queue; someone who may only override (ops by day) on Blocked too; a workflow's owner on the
workflows; an auditor on the trail; everyone else (an agent who asks AI for work) on the records.
A `next=` address, where a login was asked for on the way to a page, wins over all of these.
"""

from datetime import datetime

from django.contrib.auth.models import Group
from django.utils import timezone

from approvals.models import Workflow
from approvals.workflows.rights import (
    Viewer,
    is_ops_manager,
    workflows_overridable_by,
    workflows_reviewable_by,
)
from approvals.workflows.schedule import Shift, override_duty
from core.visibility import scope_for


def _on_after_hours_duty(user: Viewer, at: datetime) -> bool:
    """Whether one of `user`'s groups is the after-hours group on override duty for a workflow now."""
    group_ids = set(Group.objects.filter(user=user.pk).values_list("pk", flat=True))
    workflows = workflows_overridable_by(user=user).select_related("override_day_group", "override_after_hours_group")
    for workflow in workflows:
        duty = override_duty(workflow=workflow, at=at)
        if duty.shift == Shift.AFTER_HOURS and duty.group is not None and duty.group.pk in group_ids:
            return True
    return False


def landing_page(*, user: Viewer, at: datetime | None = None) -> str:
    """The URL name of the page `user` starts on at `at` (now when None)."""
    if not user.is_authenticated:
        return "login"
    if _on_after_hours_duty(user, at or timezone.now()):
        return "blocked"
    if workflows_reviewable_by(user=user).exists():
        return "review-queue"
    if workflows_overridable_by(user=user).exists() or is_ops_manager(user):
        return "blocked"
    if Workflow.objects.filter(owner=user.pk).exists():
        return "workflow-list"
    if scope_for(user).everything:
        return "trail"
    return "record-search"
