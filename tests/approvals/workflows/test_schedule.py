"""Who is on override duty: the day group inside its hours in the team's zone, the after-hours group
outside them, exactly one at any instant, across time zones and daylight-saving changes."""

import zoneinfo
from datetime import UTC, datetime, time, timedelta

import pytest
from django.contrib.auth.models import Group
from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.models import WEEKDAYS, Workflow
from approvals.workflows.schedule import OverrideSchedule, Shift, override_duty

LEADS = Group(pk=1, name="support-leads")
OPS = Group(pk=2, name="ops-managers")
WEEKDAYS_ONLY = ["mon", "tue", "wed", "thu", "fri"]


def workflow(
    *,
    days: list[str] = WEEKDAYS_ONLY,
    start: time = time(8),
    end: time = time(18),
    zone: str = "Europe/London",
    day_group: Group | None = LEADS,
    night_group: Group | None = OPS,
) -> Workflow:
    return Workflow(
        slug="address-updates",
        override_day_group=day_group,
        override_days=days,
        override_day_from=start,
        override_day_to=end,
        override_timezone=zone,
        override_after_hours_group=night_group,
    )


def utc(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "group", "until"),
    [
        # Winter: London is on GMT, so 08:00 and 18:00 in London are 08:00 and 18:00 UTC.
        (utc(2026, 1, 13, 7, 59, 59), OPS, utc(2026, 1, 13, 8)),
        (utc(2026, 1, 13, 8, 0, 0), LEADS, utc(2026, 1, 13, 18)),
        (utc(2026, 1, 13, 17, 59, 59), LEADS, utc(2026, 1, 13, 18)),
        (utc(2026, 1, 13, 18, 0, 0), OPS, utc(2026, 1, 14, 8)),
        # Summer: London is on BST, so its 08:00 and 18:00 are 07:00 and 17:00 UTC.
        (utc(2026, 7, 14, 6, 59, 59), OPS, utc(2026, 7, 14, 7)),
        (utc(2026, 7, 14, 7, 0, 0), LEADS, utc(2026, 7, 14, 17)),
        (utc(2026, 7, 14, 16, 59, 59), LEADS, utc(2026, 7, 14, 17)),
        (utc(2026, 7, 14, 17, 0, 0), OPS, utc(2026, 7, 15, 7)),
    ],
)
def test_duty_changes_exactly_at_0800_and_1800_in_the_teams_zone(at, group, until):
    duty = override_duty(workflow=workflow(), at=at)
    assert (duty.group, duty.until) == (group, until)
    assert duty.shift == (Shift.DAY if group is LEADS else Shift.AFTER_HOURS)


def test_the_weekend_belongs_to_the_after_hours_group_until_monday_morning():
    duty = override_duty(workflow=workflow(), at=utc(2026, 1, 16, 18))  # Friday 18:00 GMT
    assert duty.group == OPS
    assert duty.until == utc(2026, 1, 19, 8)
    assert override_duty(workflow=workflow(), at=utc(2026, 1, 17, 12)).group == OPS  # Saturday noon


def test_a_weekend_with_the_clocks_going_forward_is_an_hour_shorter():
    # The clocks go forward on the last Sunday of March (29 March 2026, 01:00 UTC).
    friday_evening = utc(2026, 3, 27, 18)  # 18:00 GMT
    duty = override_duty(workflow=workflow(), at=friday_evening)
    assert duty.group == OPS
    assert duty.until == utc(2026, 3, 30, 7)  # Monday 08:00 BST
    assert duty.until - friday_evening == timedelta(hours=61)
    monday = override_duty(workflow=workflow(), at=utc(2026, 3, 30, 7, 30))  # 08:30 BST
    assert (monday.group, monday.until) == (LEADS, utc(2026, 3, 30, 17))


def test_a_weekend_with_the_clocks_going_back_is_an_hour_longer():
    # The clocks go back on the last Sunday of October (25 October 2026, 01:00 UTC).
    friday_evening = utc(2026, 10, 23, 17)  # 18:00 BST
    duty = override_duty(workflow=workflow(), at=friday_evening)
    assert duty.group == OPS
    assert duty.until == utc(2026, 10, 26, 8)  # Monday 08:00 GMT
    assert duty.until - friday_evening == timedelta(hours=63)
    assert override_duty(workflow=workflow(), at=utc(2026, 10, 26, 7, 30)).group == OPS  # 07:30 GMT
    assert override_duty(workflow=workflow(), at=utc(2026, 10, 26, 8)).group == LEADS


def test_a_day_that_starts_inside_the_spring_gap_starts_when_the_clock_jumps_over_it():
    # On 29 March 2026 London's clock jumps from 01:00 GMT to 02:00 BST: 01:30 never shows.
    night_shift = workflow(days=["sun"], start=time(1, 30), end=time(3))
    before = override_duty(workflow=night_shift, at=utc(2026, 3, 29, 0, 59, 59))
    assert (before.group, before.until) == (OPS, utc(2026, 3, 29, 1))
    during = override_duty(workflow=night_shift, at=utc(2026, 3, 29, 1))  # 02:00 BST
    assert (during.group, during.until) == (LEADS, utc(2026, 3, 29, 2))  # 03:00 BST


def test_a_day_that_starts_in_the_repeated_autumn_hour_starts_at_its_first_showing():
    # On 25 October 2026 London's clock shows 01:00-02:00 twice: first BST, then GMT.
    night_shift = workflow(days=["sun"], start=time(1, 30), end=time(3))
    assert override_duty(workflow=night_shift, at=utc(2026, 10, 25, 0, 29, 59)).group == OPS
    opened = override_duty(workflow=night_shift, at=utc(2026, 10, 25, 0, 30))  # 01:30 BST
    assert (opened.group, opened.until) == (LEADS, utc(2026, 10, 25, 3))  # 03:00 GMT
    # The clock reads 01:15 again (GMT) after the day began: it stays the day shift.
    assert override_duty(workflow=night_shift, at=utc(2026, 10, 25, 1, 15)).group == LEADS


def test_the_same_instant_is_day_in_one_zone_and_night_in_another():
    at = utc(2026, 7, 14, 14)
    new_york = override_duty(workflow=workflow(zone="America/New_York", start=time(9), end=time(17)), at=at)
    tokyo = override_duty(workflow=workflow(zone="Asia/Tokyo", start=time(9), end=time(17)), at=at)
    assert (new_york.group, new_york.until) == (LEADS, utc(2026, 7, 14, 21))  # 17:00 EDT
    assert (tokyo.group, tokyo.until) == (OPS, utc(2026, 7, 15, 0))  # Wednesday 09:00 JST


def test_without_a_day_group_the_after_hours_group_is_always_on_duty_and_without_either_nobody():
    always = override_duty(workflow=workflow(day_group=None), at=utc(2026, 1, 13, 12))
    assert (always.group, always.until, always.shift) == (OPS, None, Shift.AFTER_HOURS)
    nobody = override_duty(workflow=workflow(day_group=None, night_group=None), at=utc(2026, 1, 13, 12))
    assert (nobody.group, nobody.until, nobody.shift) == (None, None, Shift.NONE)


def test_a_naive_moment_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        override_duty(workflow=workflow(), at=datetime(2026, 1, 13, 12))  # noqa: DTZ001


ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Pacific/Chatham", "America/Santiago"]


@settings(max_examples=300, deadline=None)
@given(
    # hypothesis takes naive bounds and attaches the zone itself.
    at=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),  # noqa: DTZ001
    zone=st.sampled_from(ZONES),
    days=st.sets(st.sampled_from(WEEKDAYS), min_size=1),
    start_minute=st.integers(min_value=0, max_value=23 * 60),
    length=st.integers(min_value=1, max_value=12 * 60),
)
def test_exactly_one_group_is_on_duty_and_it_changes_exactly_at_until(at, zone, days, start_minute, length):
    end_minute = min(start_minute + length, 24 * 60 - 1)
    start, end = time(start_minute // 60, start_minute % 60), time(end_minute // 60, end_minute % 60)
    schedule = workflow(days=sorted(days), start=start, end=end, zone=zone)
    duty = override_duty(workflow=schedule, at=at)
    assert duty.group in (LEADS, OPS)
    assert duty.until is not None and duty.until > at
    assert override_duty(workflow=schedule, at=duty.until - timedelta(microseconds=1)).group == duty.group
    assert override_duty(workflow=schedule, at=duty.until).group != duty.group
    tz = zoneinfo.ZoneInfo(zone)
    local = at.astimezone(tz)
    no_transition_near = (
        (at - timedelta(days=1)).astimezone(tz).utcoffset()
        == local.utcoffset()
        == (at + timedelta(days=1)).astimezone(tz).utcoffset()
    )
    if no_transition_near and start < end:
        on_the_wall = WEEKDAYS[local.weekday()] in days and start <= local.time() < end
        assert (duty.group == LEADS) == on_the_wall


# The schedule as the workflow file and the editor set it ------------------------------------------


def test_a_day_shift_needs_its_days_its_hours_in_order_and_someone_at_night():
    schedule = OverrideSchedule(day_group="support-leads", days=("mon", "someday"), day_from=time(18), day_to=time(8))
    assert schedule.problems() == [
        ("days", "choose at least one day from mon, tue, wed, thu, fri, sat, sun"),
        ("day_to", "must be after the start of the day"),
        ("after_hours_group", "is required with a day group: someone must be on duty at night"),
    ]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"timezone": "Mars/Olympus"}, ("timezone", "unknown time zone 'Mars/Olympus'")),
        ({"max_minutes": 0}, ("max_minutes", "must be a whole number from 1 to 1440")),
        ({"max_minutes": 1441}, ("max_minutes", "must be a whole number from 1 to 1440")),
        ({"max_minutes": True}, ("max_minutes", "must be a whole number from 1 to 1440")),
    ],
)
def test_any_schedule_needs_a_real_zone_and_a_bounded_override(changes, problem):
    assert OverrideSchedule(after_hours_group="ops-managers", **changes).problems() == [problem]


def test_without_a_day_group_the_after_hours_group_is_always_on_duty_and_no_hours_are_kept():
    schedule = OverrideSchedule(days=("mon",), day_from=time(8), day_to=time(18), after_hours_group="ops-managers")
    assert schedule.problems() == []
    snapshot = schedule.snapshot()
    assert (snapshot["override_days"], snapshot["override_day_from"], snapshot["override_day_to"]) == ([], None, None)


@pytest.mark.django_db
def test_a_schedule_read_from_a_workflow_is_the_one_written_to_it():
    schedule = OverrideSchedule(
        day_group="support-leads",
        days=("fri", "mon"),
        day_from=time(8),
        day_to=time(18),
        timezone="Europe/London",
        after_hours_group="ops-managers",
        max_minutes=240,
    )
    target = Workflow(slug="address-updates")
    schedule.apply_to(target)
    assert OverrideSchedule.of(target) == OverrideSchedule(**{**schedule.__dict__, "days": ("mon", "fri")})
    assert schedule.snapshot() == {
        "override_day_group": "support-leads",
        "override_days": ["mon", "fri"],
        "override_day_from": "08:00",
        "override_day_to": "18:00",
        "override_timezone": "Europe/London",
        "override_after_hours_group": "ops-managers",
        "override_max_minutes": 240,
    }
