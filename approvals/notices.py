"""The one seam through which anything tells people of an event: `notice_record` writes the notice
in the caller's transaction; delivering it to channels and people is the worker's, afterwards, so
sending never blocks or fails the action that caused it."""

from django.db import IntegrityError, transaction

from approvals.jobs import notice_deliver_queue
from approvals.models import Notice, Workflow
from approvals.models.notices import NOTIFY_EVENTS


def notice_record(
    *, event: str, subject: str, body: str, workflow: Workflow | None = None, dedupe_key: str = ""
) -> Notice | None:
    """Record that `event` happened. Returns None when a notice with `dedupe_key` was recorded before."""
    if event not in NOTIFY_EVENTS:
        raise ValueError(f"unknown notice event {event!r}; known: {', '.join(NOTIFY_EVENTS)}")
    try:
        with transaction.atomic():
            notice = Notice.objects.create(
                event=event, workflow=workflow, subject=subject[:300], body=body, dedupe_key=dedupe_key
            )
    except IntegrityError:
        if dedupe_key and Notice.objects.filter(dedupe_key=dedupe_key).exists():
            return None
        raise
    # A worker delivers it once the caller's transaction commits; beat's sweep if that message is lost.
    notice_deliver_queue(notice_id=notice.pk)
    return notice
