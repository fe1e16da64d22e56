"""The override schedule of a workflow, edited in the app by the workflow's owner."""

import zoneinfo
from datetime import time
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from approvals.models import WEEKDAYS, Workflow
from approvals.workflows.loading import MAX_OVERRIDE_MINUTES, workflow_group_permissions_sync
from audit.services import Actor, audit_record
from core.errors import NotAllowed, ValidationFailed

SCHEDULE_FIELDS = (
    "override_day_group",
    "override_days",
    "override_day_from",
    "override_day_to",
    "override_timezone",
    "override_after_hours_group",
    "override_max_minutes",
)


def schedule_snapshot(workflow: Workflow) -> dict[str, Any]:
    """The schedule as the trail shows it, with the same keys as a `workflow.changed` from a file load."""
    return {
        "override_day_group": workflow.override_day_group.name if workflow.override_day_group else None,
        "override_days": list(workflow.override_days),
        "override_day_from": workflow.override_day_from.strftime("%H:%M") if workflow.override_day_from else None,
        "override_day_to": workflow.override_day_to.strftime("%H:%M") if workflow.override_day_to else None,
        "override_timezone": workflow.override_timezone,
        "override_after_hours_group": workflow.override_after_hours_group.name
        if workflow.override_after_hours_group
        else None,
        "override_max_minutes": workflow.override_max_minutes,
    }


def schedule_editable_by(*, workflow: Workflow, user: Any) -> bool:
    return bool(user.is_authenticated) and workflow.owner_id == user.pk


def workflow_schedule_update(
    *,
    workflow: Workflow,
    user: User,
    day_group: Group | None,
    days: list[str],
    day_from: time | None,
    day_to: time | None,
    timezone_name: str,
    after_hours_group: Group | None,
    max_minutes: int,
) -> Workflow:
    """Set who may override `workflow` and when. Only its owner may; the change is audited with
    the values before and after. Returns the workflow, unchanged when nothing differs."""
    problems: list[tuple[str, str]] = []
    if day_group is not None:
        if not days or any(day not in WEEKDAYS for day in days):
            problems.append(("days", f"choose at least one day from {', '.join(WEEKDAYS)}"))
        if day_from is None:
            problems.append(("day_from", 'a time such as "08:00" is required'))
        if day_to is None:
            problems.append(("day_to", 'a time such as "18:00" is required'))
        if day_from is not None and day_to is not None and day_from >= day_to:
            problems.append(("day_to", "must be after the start of the day"))
        if after_hours_group is None:
            problems.append(("after_hours_group", "is required with a day group: someone must be on duty at night"))
    try:
        zoneinfo.ZoneInfo(timezone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(("timezone", f"unknown time zone '{timezone_name}'"))
    if (
        isinstance(max_minutes, bool)
        or not isinstance(max_minutes, int)
        or not 1 <= max_minutes <= MAX_OVERRIDE_MINUTES
    ):
        problems.append(("max_minutes", f"must be a whole number from 1 to {MAX_OVERRIDE_MINUTES}"))

    with transaction.atomic():
        workflow = (
            Workflow.objects.select_for_update(of=("self",))
            .select_related("override_day_group", "override_after_hours_group")
            .get(pk=workflow.pk)
        )
        if not schedule_editable_by(workflow=workflow, user=user):
            raise NotAllowed(f"only the owner of {workflow.slug} ({workflow.owner}) changes its override schedule")
        if problems:
            raise ValidationFailed(problems)
        before = schedule_snapshot(workflow)
        workflow.override_day_group = day_group
        workflow.override_days = [day for day in WEEKDAYS if day in days] if day_group else []
        workflow.override_day_from = day_from if day_group else None
        workflow.override_day_to = day_to if day_group else None
        workflow.override_timezone = timezone_name
        workflow.override_after_hours_group = after_hours_group
        workflow.override_max_minutes = max_minutes
        after = schedule_snapshot(workflow)
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
