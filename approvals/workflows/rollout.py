"""Rollout: which stages write, and how many writes a canary workflow has made today."""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time

from django.db.models import Count
from django.utils import timezone

from approvals.models import (
    Stage,
    Workflow,
)
from records.models import Change, ChangeAction

CANARY_CAP_REASON = "canary cap reached, resumes at 00:00 UTC"

# The worker name rollback drills write under: a drill's writes are undone at once, and count toward no cap.
DRILL_WORKER = "rollback-drill"
# How the prompt version of a drill's proposals starts: the circuit breaker judges no drill, which undoes all it writes.
DRILL_PROMPT_VERSION_PREFIX = "rollback-drill@"


STAGE_WAIT_REASONS = {
    Stage.DRAFT: "the workflow is in draft: it does not write yet",
    Stage.SHADOW: "the workflow is in shadow: it never writes",
    Stage.PAUSED: "the workflow is paused: nothing applies until it is resumed",
}


APPLYING_STAGES = (Stage.CANARY, Stage.LIVE)


def utc_day_start(moment: datetime | None = None) -> datetime:
    moment = (moment or timezone.now()).astimezone(UTC)
    return datetime.combine(moment.date(), time.min, tzinfo=UTC)


def canary_writes_today(*, workflow_slugs: Iterable[str], now: datetime | None = None) -> dict[str, int]:
    """Writes applied today (from 00:00 UTC) by each workflow, reverts and rollback drills not counted:
    what a canary cap counts.
    A write to a store outside the database counts from its intent (in flight until it is marked
    done), so two writes cannot both take the last slot while the first is being written."""
    rows = (
        Change.with_in_flight.filter(
            workflow_slug__in=list(workflow_slugs),
            applied_at__gte=utc_day_start(now),
        )
        .exclude(action=ChangeAction.REVERT)
        .exclude(applied_by=DRILL_WORKER)
        .values_list("workflow_slug")
        .annotate(count=Count("id"))
    )
    return dict(rows)


def canary_workflows_capped(*, limits: Mapping[str, int], now: datetime | None = None) -> set[str]:
    """Of these canary workflows (slug: daily limit), the slugs that reached their cap today. One query, or
    none when `limits` is empty."""
    if not limits:
        return set()
    used = canary_writes_today(workflow_slugs=limits, now=now)
    return {slug for slug, limit in limits.items() if used.get(slug, 0) >= limit}


def canary_cap_reached(*, workflow: Workflow, now: datetime | None = None) -> bool:
    return bool(canary_workflows_capped(limits={workflow.slug: workflow.canary_daily_limit}, now=now))
