"""Celery tasks for notices. They take ids, call one service, and leave every rule to it."""

from celery import shared_task
from django.conf import settings

from approvals.jobs import notice_deliver_queue
from approvals.notifying.scheduled import overrides_expiring_record, pending_digests_record
from approvals.notifying.services import notices_deliver, notices_waiting

_LIMITS = {
    "soft_time_limit": settings.COUNTERSIGN["NOTICE_SOFT_TIME_LIMIT_SECONDS"],
    "time_limit": settings.COUNTERSIGN["NOTICE_SOFT_TIME_LIMIT_SECONDS"] + 30,
}


@shared_task(name="approvals.deliver_notices", acks_late=True, **_LIMITS)
def deliver_notices(notice_id: int | None = None) -> int:
    """Deliver one notice to its channels and people, or whatever is due of every notice."""
    return notices_deliver(notice_id=notice_id)


@shared_task(name="approvals.sweep_notices", **_LIMITS)
def sweep_notices() -> bool:
    """Run by beat: queue a delivery run when a notice waits (a lost message, a retry, quiet hours ended)."""
    waiting = notices_waiting()
    if waiting:
        notice_deliver_queue()
    return waiting


@shared_task(name="approvals.record_pending_digests", **_LIMITS)
def record_pending_digests() -> int:
    """Run by beat: one digest of pending work per workflow and window."""
    return len(pending_digests_record())


@shared_task(name="approvals.notice_expiring_overrides", **_LIMITS)
def notice_expiring_overrides() -> int:
    """Run by beat: tell of each override ten minutes before it expires."""
    return len(overrides_expiring_record())
