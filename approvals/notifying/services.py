"""Delivering notices: each notice is fanned out to its targets (the workflow file's channels that
ask for its event, and the people who asked to be emailed of it), then each delivery is tried until
it is sent or out of attempts, with a growing wait between tries. All of it runs on a worker after
the action that caused the notice has committed, so a channel that is down never touches it.

A run takes the deliveries it sends for a while (`NOTICE_CLAIM_SECONDS`), counting an attempt as it
takes each; a run that dies leaves them to be taken again once that time is up. A notice may thus
reach a channel twice in that rare case, never zero times while attempts remain.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from approvals.models import DeliveryStatus, Notice, NoticeDelivery, Workflow
from approvals.notifying.channels import ChannelFailed, channel_label, channel_send, channels_wanting
from approvals.notifying.conflicts import conflict_notices_record, conflicts_waiting
from approvals.notifying.quiet import quiet_until
from approvals.notifying.rights import people_emailed

logger = logging.getLogger(__name__)


def _setting(name: str) -> float:
    return float(settings.COUNTERSIGN[name])


def _quiet_reason(until: datetime) -> str:
    return f"quiet hours until {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _deliveries_of(notice: Notice, workflows: list[Workflow], now: datetime) -> list[NoticeDelivery]:
    rows = [
        NoticeDelivery(notice=notice, target=channel_label(channel), channel=channel, next_attempt_at=now)
        for channel in channels_wanting(workflows=workflows, event=notice.event)
    ]
    for person, prefs in people_emailed(workflows=workflows, event=notice.event):
        held = quiet_until(prefs, now)
        rows.append(
            NoticeDelivery(
                notice=notice,
                target=f"email:{person.get_username()}"[:300],
                user=person,
                next_attempt_at=held or now,
                held_reason=_quiet_reason(held) if held else "",
            )
        )
    return rows


def notices_fan_out(*, notice_id: int | None = None, limit: int = 200) -> int:
    """Make the deliveries of notices not yet fanned out (one, or the oldest `limit`). Returns how many
    notices. A notice of a workflow goes to that workflow's channels and people; one of no workflow
    to every workflow's, each channel once."""
    now = timezone.now()
    with transaction.atomic():
        waiting = Notice.objects.select_for_update(skip_locked=True, of=("self",)).filter(fanned_out_at__isnull=True)
        if notice_id is not None:
            waiting = waiting.filter(pk=notice_id)
        notices = list(waiting.select_related("workflow").order_by("pk")[:limit])
        if not notices:
            return 0
        every_workflow: list[Workflow] | None = None
        rows: list[NoticeDelivery] = []
        for notice in notices:
            if notice.workflow is not None:
                workflows = [notice.workflow]
            else:
                every_workflow = every_workflow if every_workflow is not None else list(Workflow.objects.order_by("pk"))
                workflows = every_workflow
            rows += _deliveries_of(notice, workflows, now)
        NoticeDelivery.objects.bulk_create(rows, ignore_conflicts=True)
        Notice.objects.filter(pk__in=[notice.pk for notice in notices]).update(fanned_out_at=now)
    return len(notices)


def deliveries_claim_due(*, notice_id: int | None = None, limit: int = 50) -> list[int]:
    """Take the deliveries due now for one run, counting an attempt for each."""
    now = timezone.now()
    with transaction.atomic():
        due = NoticeDelivery.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now,
        )
        if notice_id is not None:
            due = due.filter(notice_id=notice_id)
        ids = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
        NoticeDelivery.objects.filter(pk__in=ids).update(
            claimed_until=now + timedelta(seconds=_setting("NOTICE_CLAIM_SECONDS")), attempts=F("attempts") + 1
        )
    return ids


def _send_email(delivery: NoticeDelivery, person: Any) -> None:
    notice = delivery.notice
    EmailMessage(
        subject=f"[Countersign] {notice.subject}",
        body=f"{notice.body}\n\nYou are told of this because of your notice preferences in Countersign.\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[person.email],
        headers={"X-Countersign-Notice": str(notice.pk), "X-Countersign-Event": notice.event},
    ).send()


@dataclass(frozen=True)
class Attempt:
    """How one try went: sent, or the error and whether trying again could help; or held (quiet hours)."""

    error: str = ""
    retry: bool = False
    held_until: datetime | None = None


def _try(delivery: NoticeDelivery) -> Attempt:
    if delivery.user is not None:
        prefs = getattr(delivery.user, "notice_prefs", None)
        if prefs is None or not prefs.email_on or delivery.notice.event not in (prefs.events or []):
            return Attempt(error="not sent: the person turned this email off before it went", retry=False)
        held = quiet_until(prefs, timezone.now())
        if held is not None:
            return Attempt(held_until=held)
    try:
        if delivery.user is not None:
            _send_email(delivery, delivery.user)
        else:
            channel_send(channel=delivery.channel, subject=delivery.notice.subject, body=delivery.notice.body)
    except ChannelFailed as failure:
        return Attempt(error=str(failure), retry=failure.retry)
    except Exception as failure:  # a mail server or a channel's library failing is kept on the row, never lost
        return Attempt(error=f"{type(failure).__name__}: {failure}"[:2000], retry=True)
    return Attempt()


def _finish(delivery_id: int, attempt: Attempt) -> NoticeDelivery | None:
    now = timezone.now()
    with transaction.atomic():
        row = NoticeDelivery.objects.select_for_update(of=("self",)).filter(pk=delivery_id).first()
        if row is None or row.status != DeliveryStatus.PENDING:
            return row
        row.claimed_until = None
        if attempt.held_until is not None:
            # Holding for quiet hours is no attempt.
            row.attempts = max(0, row.attempts - 1)
            row.next_attempt_at, row.held_reason = attempt.held_until, _quiet_reason(attempt.held_until)
        elif not attempt.error:
            row.status, row.sent_at, row.last_error, row.held_reason = DeliveryStatus.SENT, now, "", ""
        elif not attempt.retry or row.attempts >= int(_setting("NOTICE_MAX_ATTEMPTS")):
            row.status, row.last_error, row.held_reason = DeliveryStatus.FAILED, attempt.error, ""
            logger.error("notice %s to %s failed for good: %s", row.notice_id, row.target, attempt.error)
        else:
            wait = _setting("NOTICE_RETRY_SECONDS") * 2 ** (row.attempts - 1)
            row.last_error, row.held_reason = attempt.error, ""
            row.next_attempt_at = now + timedelta(seconds=min(wait, 3600))
            logger.warning(
                "notice %s to %s failed (attempt %s): %s", row.notice_id, row.target, row.attempts, attempt.error
            )
        row.save()
    return row


def delivery_run(*, delivery_id: int) -> NoticeDelivery | None:
    """Try one delivery this run has taken, and record how it went."""
    delivery = (
        NoticeDelivery.objects.select_related("notice", "user__notice_prefs")
        .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
        .first()
    )
    if delivery is None:
        return None
    return _finish(delivery_id, _try(delivery))


def notices_deliver(*, notice_id: int | None = None, limit: int = 50) -> int:
    """Fan out (one notice, or every one waiting) and try what is due. Returns how many were tried.
    A run for every notice first tells the conflicts whose workflow may be told of them now."""
    if notice_id is None:
        conflict_notices_record()
    notices_fan_out(notice_id=notice_id)
    ids = deliveries_claim_due(notice_id=notice_id, limit=limit)
    return sum(delivery_run(delivery_id=pk) is not None for pk in ids)


def notices_waiting() -> bool:
    """Whether any notice waits to be fanned out, any delivery is due, or any conflict may be told
    (beat's sweep asks)."""
    now = timezone.now()
    due = NoticeDelivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        status=DeliveryStatus.PENDING,
        next_attempt_at__lte=now,
    )
    return Notice.objects.filter(fanned_out_at__isnull=True).exists() or due.exists() or conflicts_waiting(now=now)
