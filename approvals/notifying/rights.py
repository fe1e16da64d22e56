"""Who is emailed of an event: the people of a workflow's approver and override groups who asked for
that event on their notice preferences, and who have an address. An event of no workflow (a store
that does not answer, the audit chain broken) concerns the groups of every workflow."""

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from approvals.models import UserNoticePrefs, Workflow

GROUP_FIELDS = ("approver_group_id", "override_day_group_id", "override_after_hours_group_id")


def groups_of(workflows: Iterable[Workflow]) -> set[int]:
    return {group for workflow in workflows for name in GROUP_FIELDS if (group := getattr(workflow, name))}


def people_emailed(*, workflows: Iterable[Workflow], event: str) -> list[tuple[Any, UserNoticePrefs]]:
    """The people to email of `event` in these workflows, each with their preferences. One query."""
    groups = groups_of(workflows)
    if not groups:
        return []
    people = (
        get_user_model()
        .objects.filter(groups__in=groups, is_active=True, notice_prefs__email_on=True)
        .exclude(Q(email="") | Q(email__isnull=True))
        .select_related("notice_prefs")
        .distinct()
        .order_by("pk")
    )
    return [(person, person.notice_prefs) for person in people if event in (person.notice_prefs.events or [])]
