"""Each person's notice preferences: whether they are emailed, of which events, and their quiet hours."""

import zoneinfo
from datetime import time
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.models import UserNoticePrefs
from approvals.models.notices import NOTIFY_EVENTS
from core.errors import ValidationFailed

# How the events read on the preferences page and in the README.
EVENT_LABELS = {
    "pending_digest": "Proposals waiting for a decision (a digest, at most one per window)",
    "sla_breach": "A proposal waited past its workflow's decision time",
    "stop_engaged": "A stop switch engaged",
    "stop_released": "A stop switch released",
    "circuit_tripped": "The circuit breaker stopped a workflow",
    "override_granted": "An override granted",
    "override_expiring": "An override ends in ten minutes",
    "conflict": "Proposals in conflict with their records (told together, at most one email per window)",
    "undo_finished": "An undo job finished",
    "store_unreachable": "A record store stopped answering",
    "audit_broken": "The audit chain found broken",
}


def prefs_for(*, user: Any) -> UserNoticePrefs:
    """`user`'s preferences, or the defaults (no email, every event ticked) when they have none yet."""
    found = UserNoticePrefs.objects.filter(user=user).first()
    return found or UserNoticePrefs(user=user, email_on=False, events=list(NOTIFY_EVENTS))


def prefs_save(
    *,
    user: Any,
    email_on: bool,
    events: list[str],
    quiet_from: time | None,
    quiet_to: time | None,
    tz: str,
) -> UserNoticePrefs:
    """Save what `user` wants to be emailed, and when not. Raises ValidationFailed naming the field."""
    problems: list[tuple[str, str]] = []
    unknown = [event for event in events if event not in NOTIFY_EVENTS]
    if unknown:
        problems.append(("events", f"unknown events: {', '.join(unknown)}"))
    if (quiet_from is None) != (quiet_to is None):
        problems.append(
            ("quiet_to" if quiet_to is None else "quiet_from", "give both ends of the quiet hours, or neither")
        )
    elif quiet_from is not None and quiet_from == quiet_to:
        problems.append(("quiet_to", "must differ from the start, or leave both empty"))
    if tz not in zoneinfo.available_timezones():
        problems.append(("timezone", f"'{tz}' is not a time zone; use a name such as Europe/London"))
    if email_on and not getattr(user, "email", ""):
        problems.append(("email_on", "your account has no email address; ask an administrator to add one"))
    if problems:
        raise ValidationFailed(problems)
    with transaction.atomic():
        prefs, _ = UserNoticePrefs.objects.select_for_update().get_or_create(user=user)
        prefs.email_on, prefs.quiet_from, prefs.quiet_to, prefs.timezone = email_on, quiet_from, quiet_to, tz
        prefs.events = [event for event in NOTIFY_EVENTS if event in events]
        prefs.updated_at = timezone.now()
        prefs.save()
    return prefs
