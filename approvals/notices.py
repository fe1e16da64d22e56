"""The one seam through which anything tells people of an event: `notice_record` writes the notice
in the caller's transaction; delivering it to channels and people is the worker's, afterwards, so
sending never blocks or fails the action that caused it."""

from django.db import IntegrityError, transaction

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
            return Notice.objects.create(
                event=event, workflow=workflow, subject=subject[:300], body=body, dedupe_key=dedupe_key
            )
    except IntegrityError:
        if dedupe_key and Notice.objects.filter(dedupe_key=dedupe_key).exists():
            return None
        raise
