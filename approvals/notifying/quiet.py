"""Quiet hours: a person's email waits while it is quiet for them, and goes when the quiet ends.

The hours are read in the person's own time zone and may run past midnight (22:00 to 07:00). An
email held is sent at the end of the quiet hours, not dropped: what happened overnight is still
news in the morning, and the digest of pending work has already kept it to one message a window.
"""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from approvals.models import UserNoticePrefs


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _is_quiet(clock: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end  # past midnight


def quiet_until(prefs: UserNoticePrefs, at: datetime) -> datetime | None:
    """When the quiet hours that hold `at` end (aware), or None when it is not quiet then."""
    if prefs.quiet_from is None or prefs.quiet_to is None:
        return None
    zone = _zone(prefs.timezone)
    local = at.astimezone(zone)
    if not _is_quiet(local.time().replace(tzinfo=None), prefs.quiet_from, prefs.quiet_to):
        return None
    end = datetime.combine(local.date(), prefs.quiet_to, tzinfo=zone)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), prefs.quiet_to, tzinfo=zone)
    return end
