"""Who may override a workflow's blocks at a given moment: the day group inside its hours, the
after-hours group outside them. Exactly one group is on duty at any instant.

The day window is read on the wall clock of the workflow's time zone. On each listed day it runs
from the first instant the clock reads `from` to the first instant it reads `to`, so a boundary
that falls in a daylight-saving gap starts when the clock jumps over it, and one that falls in a
repeated hour starts at its first occurrence.
"""

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from approvals.models import WEEKDAYS

# A week and a day covers every listed weekday whichever day the search starts on.
_SEARCH_DAYS = 8


class Shift:
    DAY = "day"
    AFTER_HOURS = "after_hours"
    NONE = "none"


@dataclass(frozen=True)
class DayWindow:
    days: frozenset[str]
    start: time
    end: time
    zone: zoneinfo.ZoneInfo

    def opening(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC instants the window opens and closes on `day`, or None when `day` is not listed."""
        if WEEKDAYS[day.weekday()] not in self.days:
            return None
        return _first_instant_showing(day, self.start, self.zone), _first_instant_showing(day, self.end, self.zone)


@dataclass(frozen=True)
class Duty:
    """The group on override duty, until when (None: it never changes) and which shift it is."""

    group: Any  # django.contrib.auth.models.Group | None
    until: datetime | None
    shift: str

    @property
    def group_name(self) -> str:
        return self.group.name if self.group is not None else ""


def _first_instant_showing(day: date, wall: time, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first UTC instant at which the clock in `zone` reads `wall` or later on `day`."""
    local = datetime.combine(day, wall, tzinfo=zone)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    # `wall` does not exist on this day: the clock jumps over it. The jump lies between the two
    # readings of `wall` (with the offset before and after it); find the second the clock passes it.
    naive = local.replace(tzinfo=None)
    low = local.replace(fold=1).astimezone(UTC)
    high = instant
    while (high - low) > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high


def day_window_of(workflow: Any) -> DayWindow | None:
    """The workflow's day window, or None when it names no day group."""
    if workflow.override_day_group_id is None or not workflow.override_days:
        return None
    if workflow.override_day_from is None or workflow.override_day_to is None:
        return None
    return DayWindow(
        days=frozenset(workflow.override_days),
        start=workflow.override_day_from,
        end=workflow.override_day_to,
        zone=zoneinfo.ZoneInfo(workflow.override_timezone or "UTC"),
    )


def day_shift_at(window: DayWindow, at: datetime) -> tuple[bool, datetime | None]:
    """Whether `at` is inside the day window, and the instant that answer next changes."""
    if at.tzinfo is None:
        raise ValueError("the moment must be timezone-aware")
    today = at.astimezone(window.zone).date()
    for offset in range(-1, _SEARCH_DAYS):
        opening = window.opening(today + timedelta(days=offset))
        if opening is None:
            continue
        opens, closes = opening
        if opens >= closes:
            continue  # the whole window fell inside a daylight-saving gap: no day shift that day
        if opens <= at < closes:
            return True, closes
        if opens > at:
            return False, opens
    return False, None


def override_duty(*, workflow: Any, at: datetime) -> Duty:
    """The one group that may override `workflow`'s blocks at `at`, and until when."""
    window = day_window_of(workflow)
    after_hours = workflow.override_after_hours_group if workflow.override_after_hours_group_id else None
    if window is None:
        if after_hours is None:
            return Duty(group=None, until=None, shift=Shift.NONE)
        return Duty(group=after_hours, until=None, shift=Shift.AFTER_HOURS)
    inside, until = day_shift_at(window, at)
    if inside:
        return Duty(group=workflow.override_day_group, until=until, shift=Shift.DAY)
    return Duty(group=after_hours, until=until, shift=Shift.AFTER_HOURS if after_hours else Shift.NONE)
