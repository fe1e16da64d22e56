"""The one seam through which anything tells people of an event: `notice_record` writes the notice
in the caller's transaction; delivering it to channels and people is the worker's, afterwards, so
sending never blocks or fails the action that caused it. A conflict is kept with
`notice_conflict_record` instead: conflicts are told together (`notifying.conflicts`)."""

from django.db import IntegrityError, transaction

from approvals.jobs import notice_deliver_queue
from approvals.models import ConflictToTell, Notice, Proposal, Workflow
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


def notice_conflict_record(*, proposal: Proposal, reason: str) -> None:
    """Keep that the worker found `proposal` in conflict (`reason`: how its record changed), in the
    caller's transaction, to be told in its workflow's next conflict notice: at once when none was
    recorded in the last digest window, else at that window's end. One insert, which waits on nothing;
    once it commits, a delivery run tells it when it may."""
    ConflictToTell.objects.bulk_create(
        [
            ConflictToTell(
                workflow_id=proposal.workflow_id,
                proposal_id=proposal.pk,
                record_type=proposal.record_type,
                record_id=proposal.record_id,
                prompt_version=proposal.prompt_version,
                reason=reason,
                key=f"conflict:{proposal.pk}:{proposal.revision}:{proposal.apply_attempts}",
            )
        ],
        ignore_conflicts=True,
    )
    notice_deliver_queue()
