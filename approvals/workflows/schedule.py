"""Who may override a workflow's blocks: the schedule as the workflow file and the schedule editor
set it, and who is on duty at a given moment. The day group is on duty inside its hours, the
after-hours group outside them: exactly one group at any instant.

The day window is read on the wall clock of the workflow's time zone. On each listed day it runs
from the first instant the clock reads `from` to the first instant it reads `to`, so a boundary
that falls in a daylight-saving gap starts when the clock jumps over it, and one that falls in a
repeated hour starts at its first occurrence.
"""

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.contrib.auth.models import Group

from approvals.models import WEEKDAYS, Workflow

# A week and a day covers every listed weekday whichever day the search starts on.
_SEARCH_DAYS = 8
MAX_OVERRIDE_MINUTES = 24 * 60
DEFAULT_OVERRIDE_MINUTES = 60
SCHEDULE_FIELDS = (
    "override_day_group",
    "override_days",
    "override_day_from",
    "override_day_to",
    "override_timezone",
    "override_after_hours_group",
    "override_max_minutes",
)


def _clock(moment: time | None) -> str | None:
    return moment.strftime("%H:%M") if moment else None


def _group_named(name: str | None) -> Group | None:
    return Group.objects.get_or_create(name=name)[0] if name else None


@dataclass(frozen=True)
class OverrideSchedule:
    """A workflow's override schedule, groups by name. With a day group, that group is on duty on
    `days` from `day_from` to `day_to` in `timezone`, and the after-hours group the rest of the time;
    without one, the after-hours group always, or nobody. An override lasts at most `max_minutes`.
    """

    day_group: str | None = None
    days: tuple[str, ...] = ()
    day_from: time | None = None
    day_to: time | None = None
    timezone: str = "UTC"
    after_hours_group: str | None = None
    max_minutes: int = DEFAULT_OVERRIDE_MINUTES

    @classmethod
    def of(cls, workflow: Workflow) -> "OverrideSchedule":
        """The schedule `workflow` holds (load it with its two override groups)."""
        return cls(
            day_group=workflow.override_day_group.name if workflow.override_day_group else None,
            days=tuple(workflow.override_days),
            day_from=workflow.override_day_from,
            day_to=workflow.override_day_to,
            timezone=workflow.override_timezone,
            after_hours_group=workflow.override_after_hours_group.name if workflow.override_after_hours_group else None,
            max_minutes=workflow.override_max_minutes,
        )

    def problems(self) -> list[tuple[str, str]]:
        """What makes the schedule unusable, each naming its part (the names of the attributes)."""
        problems: list[tuple[str, str]] = []
        if self.day_group is not None:
            if not self.days or any(day not in WEEKDAYS for day in self.days):
                problems.append(("days", f"choose at least one day from {', '.join(WEEKDAYS)}"))
            if self.day_from is None:
                problems.append(("day_from", 'must be a time such as "08:00"'))
            if self.day_to is None:
                problems.append(("day_to", 'must be a time such as "18:00"'))
            if self.day_from is not None and self.day_to is not None and self.day_from >= self.day_to:
                problems.append(("day_to", "must be after the start of the day"))
            if self.after_hours_group is None:
                problems.append(("after_hours_group", "is required with a day group: someone must be on duty at night"))
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(("timezone", f"unknown time zone '{self.timezone}'"))
        minutes = self.max_minutes
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_OVERRIDE_MINUTES:
            problems.append(("max_minutes", f"must be a whole number from 1 to {MAX_OVERRIDE_MINUTES}"))
        return problems

    def _columns(self) -> dict[str, Any]:
        """The workflow's schedule columns but the groups: without a day group there are no day hours."""
        return {
            "override_days": [day for day in WEEKDAYS if day in self.days] if self.day_group else [],
            "override_day_from": self.day_from if self.day_group else None,
            "override_day_to": self.day_to if self.day_group else None,
            "override_timezone": self.timezone,
            "override_max_minutes": self.max_minutes,
        }

    def snapshot(self) -> dict[str, Any]:
        """The schedule as the trail shows it, keyed by the workflow's columns."""
        columns = self._columns()
        return {
            "override_day_group": self.day_group,
            "override_days": columns["override_days"],
            "override_day_from": _clock(columns["override_day_from"]),
            "override_day_to": _clock(columns["override_day_to"]),
            "override_timezone": self.timezone,
            "override_after_hours_group": self.after_hours_group,
            "override_max_minutes": self.max_minutes,
        }

    def apply_to(self, workflow: Workflow) -> None:
        """Set `workflow`'s schedule (unsaved); a group named for the first time is made."""
        for name, value in self._columns().items():
            setattr(workflow, name, value)
        workflow.override_day_group = _group_named(self.day_group)
        workflow.override_after_hours_group = _group_named(self.after_hours_group)


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
