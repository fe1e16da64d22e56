"""Conflicts told together: a bulk run gone wrong can put hundreds of proposals in conflict at once,
and a channel gets one message for them, not hundreds.

The worker keeps each conflict it finds (`notice_conflict_record`, a `ConflictToTell` row in its own
transaction) and asks for a delivery run. A run tells a workflow's conflicts waiting when its last
conflict notice is older than the digest window (`NOTICE_DIGEST_MINUTES`), or it has none: so the
first conflict after a quiet spell is told at once, and those that follow within the window wait,
counted, for one notice at its end (beat's notice sweep asks for that run). A workflow thus gets at
most one conflict notice per window, and each conflict is told in exactly one: the notice and the
rows it told are written in one transaction, and a notice's key names the conflict notice it
follows, so two runs at once cannot both tell the same window.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Min, QuerySet
from django.urls import reverse
from django.utils import timezone

from approvals.models import ConflictToTell, Notice, Workflow
from approvals.notices import notice_record

CONFLICT = "conflict"
# Proposals a notice names one by one, and prompt versions its subject names; any more are counted.
LISTED = 5
VERSIONS_NAMED = 3


def _window() -> timedelta:
    return timedelta(minutes=float(settings.COUNTERSIGN["NOTICE_DIGEST_MINUTES"]))


def _told_lately(now: datetime) -> set[int]:
    return set(
        Notice.objects.filter(event=CONFLICT, workflow__isnull=False, created_at__gt=now - _window()).values_list(
            "workflow_id", flat=True
        )
    )


def conflicts_waiting(*, now: datetime | None = None) -> bool:
    """Whether a conflict waits to be told and its workflow may be told of it now (beat's sweep asks)."""
    now = now or timezone.now()
    waiting = set(ConflictToTell.objects.filter(notice__isnull=True).values_list("workflow_id", flat=True).distinct())
    return bool(waiting - _told_lately(now))


def conflict_notices_record(*, now: datetime | None = None) -> list[Notice]:
    """Record one conflict notice for each workflow with conflicts waiting whose last conflict
    notice is older than the digest window, telling every conflict of it not told yet."""
    now = now or timezone.now()
    waiting = set(ConflictToTell.objects.filter(notice__isnull=True).values_list("workflow_id", flat=True).distinct())
    due = waiting - _told_lately(now)
    if not due:
        return []
    last = dict(
        Notice.objects.filter(event=CONFLICT, workflow_id__in=due)
        .values("workflow_id")
        .annotate(last=Max("pk"))
        .values_list("workflow_id", "last")
    )
    recorded = []
    for workflow in Workflow.objects.filter(pk__in=due).order_by("pk"):
        notice = _tell(workflow=workflow, after=last.get(workflow.pk))
        if notice is not None:
            recorded.append(notice)
    return recorded


def _tell(*, workflow: Workflow, after: int | None) -> Notice | None:
    """Tell every conflict of `workflow` waiting, in one notice. The rows are claimed for the notice
    first and counted after, in SQL: what the notice says is exactly what it claimed, however many
    (a bulk run gone wrong), and only the few it names one by one are read."""
    with transaction.atomic():
        if not ConflictToTell.objects.filter(workflow=workflow, notice__isnull=True).exists():
            return None
        notice = notice_record(
            event=CONFLICT,
            workflow=workflow,
            subject="Conflicts",  # said below, once the conflicts are claimed and counted
            body="",
            # One conflict notice follows another: a second run at once finds this key taken, and
            # what it saw waits for the next window.
            dedupe_key=f"conflicts:{workflow.pk}:after:{after or 0}",
        )
        if notice is None:
            return None
        ConflictToTell.objects.filter(workflow=workflow, notice__isnull=True).update(notice=notice)
        subject, body = _conflict_text(workflow, ConflictToTell.objects.filter(notice=notice))
        notice.subject, notice.body = subject[:300], body
        notice.save(update_fields=["subject", "body"])
    return notice


def _line(conflict: ConflictToTell) -> str:
    reason = conflict.reason if len(conflict.reason) <= 200 else conflict.reason[:199] + "…"
    page = reverse("review-detail", args=[conflict.proposal_id])
    return (
        f"- proposal {conflict.proposal_id} on {conflict.record_type} {conflict.record_id} "
        f"(prompt {conflict.prompt_version}): {reason} — {page}"
    )


def _conflict_text(workflow: Workflow, told: QuerySet[ConflictToTell]) -> tuple[str, str]:
    """What the notice says of the conflicts in `told`: one conflict as it is; several counted, by
    prompt version, the first few named with the page each is decided on. Three queries."""
    blocked = reverse("blocked")
    listed = list(told.order_by("pk")[: LISTED + 1])
    if len(listed) == 1:
        [conflict] = listed
        page = reverse("review-detail", args=[conflict.proposal_id])
        return (
            f"Conflict: proposal {conflict.proposal_id} on {conflict.record_type} {conflict.record_id} was not written",
            f"The record changed since proposal {conflict.proposal_id} ({workflow.slug}, prompt "
            f"{conflict.prompt_version}) was made: {conflict.reason}.\n"
            f"It is back with a person, who sees the three values side by side: {page}",
        )
    span = told.aggregate(count=Count("pk"), first=Min("created_at"), latest=Max("created_at"))
    count = span["count"]
    versions = [
        (row["prompt_version"], row["n"])
        for row in told.values("prompt_version").annotate(n=Count("pk")).order_by("-n", "prompt_version")
    ]
    named = ", ".join(version for version, _ in versions[:VERSIONS_NAMED])
    if len(versions) > VERSIONS_NAMED:
        named += f" and {len(versions) - VERSIONS_NAMED} more"
    lines = [_line(conflict) for conflict in listed[:LISTED]]
    if count > LISTED:
        lines.append(f"- and {count - LISTED} more")
    by_version = ", ".join(f"{version}: {number}" for version, number in versions)
    return (
        f"Conflicts: {count} proposals of {workflow.slug} were not written (prompt {named})",
        f"{count} proposals of {workflow.name} ({workflow.slug}) were not written between "
        f"{span['first']:%Y-%m-%d %H:%M} and {span['latest']:%Y-%m-%d %H:%M} UTC: their records changed since "
        f"they were made.\nBy prompt version: {by_version}.\n\n" + "\n".join(lines) + "\n\n"
        f"Each is back with a person, who sees the three values side by side on its page; every proposal "
        f"in conflict is listed on {blocked}",
    )
