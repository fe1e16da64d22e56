"""The override schedule of a workflow, edited in the app by the workflow's owner."""

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from approvals.models import Workflow
from approvals.workflows.loading import workflow_group_permissions_sync
from approvals.workflows.schedule import SCHEDULE_FIELDS, OverrideSchedule
from audit.services import Actor, audit_record, user_label
from core.errors import NotAllowed, ValidationFailed


def schedule_editable_by(*, workflow: Workflow, user: Any) -> bool:
    return bool(user.is_authenticated) and workflow.owner_id == user.pk


def workflow_schedule_update(*, workflow: Workflow, user: User, schedule: OverrideSchedule) -> Workflow:
    """Set who may override `workflow` and when. Only its owner may; the change is audited with
    the values before and after. Returns the workflow, unchanged when nothing differs."""
    problems = schedule.problems()
    with transaction.atomic():
        workflow = (
            Workflow.objects.select_for_update(of=("self",))
            .select_related("override_day_group", "override_after_hours_group")
            .get(pk=workflow.pk)
        )
        if not schedule_editable_by(workflow=workflow, user=user):
            raise NotAllowed(
                f"only the owner of {workflow.slug}, {user_label(workflow.owner)}, changes its override schedule"
            )
        if problems:
            raise ValidationFailed(problems)
        before = OverrideSchedule.of(workflow).snapshot()
        schedule.apply_to(workflow)
        after = OverrideSchedule.of(workflow).snapshot()
        changed = sorted(key for key in after if before[key] != after[key])
        if not changed:
            return workflow
        workflow.updated_at = timezone.now()
        workflow.save(update_fields=[*SCHEDULE_FIELDS, "updated_at"])
        workflow_group_permissions_sync(workflow=workflow)
        audit_record(
            action="workflow.changed",
            actor=Actor.user(user),
            workflow_slug=workflow.slug,
            old_value={key: before[key] for key in changed},
            new_value={key: after[key] for key in changed},
            details={"what": "override schedule"},
        )
    return workflow
