"""What beat tells people of on a schedule: the pending work of each workflow as one digest per
window (never one message per proposal), and each override ten minutes before it expires."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from approvals.models import Notice, Override, Proposal, ProposalStatus, UserNoticePrefs, Workflow
from approvals.notices import notice_record
from core.timeutils import humanize_age

DIGEST = "pending_digest"
EXPIRING_WITHIN = timedelta(minutes=10)


def _digest_window() -> timedelta:
    return timedelta(minutes=float(settings.COUNTERSIGN["NOTICE_DIGEST_MINUTES"]))


def _wanting_digests() -> list[Workflow]:
    """Workflows whose file asks for the digest on a channel; every workflow when somebody asked to
    be emailed it (delivery finds who among each workflow's groups did)."""
    workflows = list(Workflow.objects.order_by("pk"))
    someone = any(
        DIGEST in (events or [])
        for events in UserNoticePrefs.objects.filter(email_on=True).values_list("events", flat=True)
    )
    if someone:
        return workflows
    return [w for w in workflows if any(DIGEST in entry.get("events", []) for entry in w.notify or [])]


def pending_digests_record(*, now: datetime | None = None) -> list[Notice]:
    """Record one digest per workflow with pending work that had none in the last window: how many
    proposals wait for a decision, and how long the oldest has waited."""
    now = now or timezone.now()
    window = _digest_window()
    workflows = {workflow.pk: workflow for workflow in _wanting_digests()}
    if not workflows:
        return []
    told = set(
        Notice.objects.filter(event=DIGEST, workflow_id__in=workflows, created_at__gt=now - window).values_list(
            "workflow_id", flat=True
        )
    )
    pending = (
        Proposal.objects.filter(status=ProposalStatus.PENDING, workflow_id__in=set(workflows) - told)
        .values("workflow_id")
        .annotate(waiting=Count("pk"), oldest=Min("created_at"))
        .order_by("workflow_id")
    )
    bucket = int(now.timestamp() // max(1, window.total_seconds()))
    recorded = []
    for row in pending:
        workflow = workflows[row["workflow_id"]]
        waiting, oldest = row["waiting"], humanize_age(row["oldest"], now=now)
        noun = "proposal" if waiting == 1 else "proposals"
        notice = notice_record(
            event=DIGEST,
            workflow=workflow,
            subject=f"{workflow.slug}: {waiting} {noun} waiting for a decision, oldest {oldest}",
            body=(
                f"{waiting} {noun} of {workflow.name} ({workflow.slug}) wait for a decision; "
                f"the oldest has waited {oldest}."
            ),
            dedupe_key=f"pending-digest:{workflow.pk}:{bucket}",
        )
        if notice is not None:
            recorded.append(notice)
    return recorded


def overrides_expiring_record(*, now: datetime | None = None) -> list[Notice]:
    """Record, once per override, that it ends within ten minutes. An override granted for ten minutes
    or less is not told again: its grant already said when it ends."""
    now = now or timezone.now()
    soon = (
        Override.objects.filter(revoked_at__isnull=True, expires_at__gt=now, expires_at__lte=now + EXPIRING_WITHIN)
        .select_related("workflow", "granted_by")
        .order_by("expires_at")
    )
    candidates = {f"override-expiring:{override.pk}": override for override in soon}
    told = set(Notice.objects.filter(dedupe_key__in=candidates).values_list("dedupe_key", flat=True))
    recorded = []
    for key, override in candidates.items():
        if key in told or override.expires_at - override.granted_at <= EXPIRING_WITHIN:
            continue
        notice = notice_record(
            event="override_expiring",
            workflow=override.workflow,
            subject=f"Override of {override.get_block_display().lower()} on {override.target_label} ends at "
            f"{override.expires_at:%H:%M} UTC",
            body=(
                f"{override.granted_by.get_username()}'s override of {override.get_block_display().lower()} on "
                f"{override.target_label} ends at {override.expires_at:%Y-%m-%d %H:%M} UTC, in "
                f"{max(1, int((override.expires_at - now).total_seconds() // 60))} minutes. "
                f"Reason given: {override.reason}"
            ),
            dedupe_key=key,
        )
        if notice is not None:
            recorded.append(notice)
    return recorded
