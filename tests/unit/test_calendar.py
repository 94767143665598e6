"""The working calendar and time-standard deadlines, with real 2026 dates in WIB.

2026 facts used below (from the installed `holidays` package, checked in
`test_package_knows_the_2026_dates_used_here`): Mon 17 Aug is Independence Day,
Thu 24 Dec is cuti bersama (category `government`), Fri 25 Dec is Christmas,
Wed 18 Mar is the cuti bersama before Nyepi. 5 Jan 2026 is a Monday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.engine.calendar import (
    BENGKULU_HOURS,
    DayOff,
    ExtraWorkingDay,
    Interval,
    SpecialHours,
    WeeklyHours,
    WorkingCalendar,
    deadlines,
    hours,
    ramadan,
)
from services.core.engine.definition import TimeStandard
from services.core.engine.durations import Duration

JAKARTA = ZoneInfo("Asia/Jakarta")
DEFAULT = WorkingCalendar()
# A satker with every kind of override: a regional day off on Wed 7 Jan, Saturday 10 Jan
# worked in the morning, cuti bersama of 24 Dec cancelled, and Ramadan 1447 H hours.
LOCAL = WorkingCalendar(
    days_off=(DayOff(date(2026, 1, 7), "Hari jadi Kabupaten Bengkulu Tengah"),),
    extra_working_days=(
        ExtraWorkingDay(date(2026, 1, 10), hours("08:00-12:00"), "pengganti 7 Januari"),
        ExtraWorkingDay(date(2026, 12, 24), BENGKULU_HOURS.thursday, "cuti bersama dibatalkan"),
    ),
    special_hours=(ramadan(date(2026, 2, 19), date(2026, 3, 19)),),
)
# Every working day of the default hours lasts 7.5 h (Mon-Thu 4 + 3.5, Fri 4.5 + 3).
DAY_LENGTH = 27_000


def wib(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JAKARTA)


def test_package_knows_the_2026_dates_used_here() -> None:
    public = holidays.country_holidays("ID", years=2026, categories=("public",))
    government = holidays.country_holidays("ID", years=2026, categories=("government",))
    assert date(2026, 8, 17) in public
    assert date(2026, 12, 25) in public
    assert date(2026, 12, 24) in government
    assert date(2026, 3, 18) in government
    assert date(2026, 8, 17).weekday() == 0


@pytest.mark.parametrize(
    ("calendar", "instant", "expected"),
    [
        (DEFAULT, wib(1, 5, 7, 59), False),
        (DEFAULT, wib(1, 5, 8), True),
        (DEFAULT, wib(1, 5, 11, 59), True),
        (DEFAULT, wib(1, 5, 12), False),  # the break starts at 12:00
        (DEFAULT, wib(1, 5, 12, 59), False),
        (DEFAULT, wib(1, 5, 13), True),
        (DEFAULT, wib(1, 5, 16, 29), True),
        (DEFAULT, wib(1, 5, 16, 30), False),  # intervals are half-open
        (DEFAULT, wib(1, 9, 7, 30), True),  # Friday opens at 07:30
        (DEFAULT, wib(1, 9, 13), False),  # Friday's break lasts until 13:30
        (DEFAULT, wib(1, 9, 13, 30), True),
        (DEFAULT, wib(1, 10, 10), False),  # Saturday
        (DEFAULT, wib(1, 11, 10), False),  # Sunday
        (DEFAULT, wib(8, 17, 10), False),  # Independence Day
        (DEFAULT, wib(12, 24, 10), False),  # cuti bersama
        (DEFAULT, wib(12, 25, 10), False),  # Christmas
        (DEFAULT, wib(3, 18, 10), False),  # cuti bersama before Nyepi
        (DEFAULT, datetime(2026, 1, 5, 3, tzinfo=UTC), True),  # 10:00 WIB
        (DEFAULT, datetime(2026, 1, 5, 1, tzinfo=UTC), True),  # 08:00 WIB is 01:00 UTC...
        (DEFAULT, datetime(2026, 1, 5, 0, 59, tzinfo=UTC), False),  # ...so 00:59 is before
        (LOCAL, wib(1, 7, 10), False),  # the regional day off
        (LOCAL, wib(1, 10, 10), True),  # the Saturday worked
        (LOCAL, wib(1, 10, 13), False),  # ...in the morning only
        (LOCAL, wib(12, 24, 10), True),  # cuti bersama cancelled
        (LOCAL, wib(2, 23, 12, 15), False),  # Ramadan break 12:00-12:30
        (LOCAL, wib(2, 23, 12, 45), True),  # the usual break is over in Ramadan
        (LOCAL, wib(2, 23, 15, 30), False),  # Ramadan closes at 15:00 Mon-Thu
        (LOCAL, wib(2, 27, 12, 30), False),  # Ramadan Friday break 11:30-13:00
        (LOCAL, wib(3, 20, 10), False),  # Ramadan over; Eid cuti bersama
    ],
)
def test_is_working_time(calendar: WorkingCalendar, instant: datetime, expected: bool) -> None:
    assert calendar.is_working_time(instant) is expected


def test_utc_and_wib_give_the_same_instant() -> None:
    assert datetime(2026, 1, 5, 1, tzinfo=UTC) == wib(1, 5, 8)
    assert DEFAULT.is_working_time(datetime(2026, 1, 5, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("calendar", "start", "duration", "expected"),
    [
        # Working seconds: the earliest instant by which that much work time has passed.
        (DEFAULT, wib(1, 5, 8), "PT4H", wib(1, 5, 12)),  # ends at the break, not after it
        (DEFAULT, wib(1, 5, 11), "PT2H", wib(1, 5, 14)),
        (DEFAULT, wib(1, 9, 11), "PT2H", wib(1, 9, 14, 30)),  # Friday's longer break
        (DEFAULT, wib(1, 5, 16), "PT1H", wib(1, 6, 8, 30)),
        (DEFAULT, wib(1, 9, 16), "PT1H", wib(1, 12, 8, 30)),  # over the weekend
        (DEFAULT, wib(1, 10, 10), "PT1H", wib(1, 12, 9)),  # from Saturday
        (DEFAULT, wib(1, 5, 12, 30), "PT45M", wib(1, 5, 13, 45)),  # from the break
        (DEFAULT, wib(8, 14, 16), "PT1H", wib(8, 18, 8, 30)),  # over Independence Day
        (DEFAULT, wib(12, 23, 16), "PT1H", wib(12, 28, 8, 30)),  # over 24 and 25 Dec
        (DEFAULT, wib(1, 5, 10), "PT0S", wib(1, 5, 10)),
        (DEFAULT, wib(1, 10, 10), "PT0S", wib(1, 10, 10)),  # zero does not move
        # Working days: the same working position on the Nth following working day.
        (DEFAULT, wib(1, 5, 10), "P1D", wib(1, 6, 10)),
        (DEFAULT, wib(1, 5, 10), "P3D", wib(1, 8, 10)),
        (DEFAULT, wib(1, 8, 15), "P1D", wib(1, 9, 15)),  # 6 h into Thursday and Friday
        (DEFAULT, wib(1, 9, 10), "P1D", wib(1, 12, 10, 30)),  # 2.5 h after Friday's 07:30
        (DEFAULT, wib(1, 10, 10), "P1D", wib(1, 12, 16, 30)),  # Saturday: all of Monday
        (DEFAULT, wib(1, 5, 8), "P1D", wib(1, 5, 16, 30)),  # from opening: all of today
        (DEFAULT, wib(1, 5, 7), "P1D", wib(1, 5, 16, 30)),
        (DEFAULT, wib(1, 5, 17), "P1D", wib(1, 6, 16, 30)),  # after closing: all of Tuesday
        (DEFAULT, wib(1, 5, 12, 30), "P1D", wib(1, 6, 12)),  # from the break
        (DEFAULT, wib(1, 5, 10), "P1DT4H", wib(1, 6, 15)),  # seconds after the days
        (DEFAULT, wib(8, 14, 10), "P1D", wib(8, 18, 10, 30)),  # Independence Day skipped
        (DEFAULT, wib(12, 23, 10), "P1D", wib(12, 28, 10)),  # 24 Dec, 25 Dec, weekend
        (DEFAULT, wib(3, 17, 10), "P1D", wib(3, 25, 10)),  # Nyepi and Eid, 18-24 Mar
        # Local overrides.
        (LOCAL, wib(1, 6, 10), "P1D", wib(1, 8, 10)),  # Wednesday 7 Jan off
        (LOCAL, wib(1, 9, 16), "PT1H", wib(1, 10, 8, 30)),  # Saturday 10 Jan worked
        (LOCAL, wib(1, 9, 10), "P1D", wib(1, 10, 10, 30)),  # 2.5 h into the Saturday
        (LOCAL, wib(1, 9, 16), "P1D", wib(1, 10, 12)),  # clamped to Saturday's 4 h
        (LOCAL, wib(12, 23, 10), "P1D", wib(12, 24, 10)),  # cuti bersama cancelled
        (LOCAL, wib(2, 23, 14), "PT2H", wib(2, 24, 9)),  # Ramadan closes at 15:00
        (LOCAL, wib(2, 26, 10), "P1D", wib(2, 27, 10)),  # Ramadan Friday opens at 08:00
        (LOCAL, wib(2, 26, 14, 45), "P1D", wib(2, 27, 15, 30)),  # 6.25 h clamped to 6 h
        (LOCAL, wib(2, 18, 10), "P1D", wib(2, 19, 10)),  # into Ramadan
        (LOCAL, wib(2, 18, 16), "P1D", wib(2, 19, 15)),  # 7 h clamped to Ramadan's 6.5 h
    ],
)
def test_add_working_time(
    calendar: WorkingCalendar, start: datetime, duration: str, expected: datetime
) -> None:
    result = calendar.add_working_time(start, Duration.parse(duration))
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("calendar", "a", "b", "expected"),
    [
        (DEFAULT, wib(1, 5, 8), wib(1, 5, 16, 30), timedelta(hours=7, minutes=30)),
        (DEFAULT, wib(1, 5, 11), wib(1, 5, 14), timedelta(hours=2)),
        (DEFAULT, wib(1, 9, 16), wib(1, 12, 9), timedelta(hours=1, minutes=30)),
        (DEFAULT, wib(1, 10), wib(1, 11, 23), timedelta(0)),
        (DEFAULT, wib(1, 5), wib(1, 12), timedelta(hours=37, minutes=30)),
        (DEFAULT, wib(8, 17), wib(8, 24), timedelta(hours=30)),  # Independence Day week
        (DEFAULT, wib(1, 5, 14), wib(1, 5, 11), -timedelta(hours=2)),
        (LOCAL, wib(2, 23), wib(2, 28), timedelta(hours=32)),  # Ramadan: 4 × 6.5 + 6
    ],
)
def test_working_time_between(
    calendar: WorkingCalendar, a: datetime, b: datetime, expected: timedelta
) -> None:
    assert calendar.working_time_between(a, b) == expected


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (wib(1, 5, 10), wib(1, 5, 10)),
        (wib(1, 5, 7), wib(1, 5, 8)),
        (wib(1, 5, 12, 30), wib(1, 5, 13)),
        (wib(1, 9, 12, 30), wib(1, 9, 13, 30)),
        (wib(1, 9, 17), wib(1, 12, 8)),
        (wib(8, 16, 9), wib(8, 18, 8)),  # Sunday before Independence Day
    ],
)
def test_next_working_instant(instant: datetime, expected: datetime) -> None:
    assert DEFAULT.next_working_instant(instant) == expected


def standard(low: str, high: str, basis: str = "working") -> TimeStandard:
    return TimeStandard.model_validate(
        {"source_text": f"{low}..{high}", "min": low, "max": high, "basis": basis}
    )


@pytest.mark.parametrize(
    ("time_standard", "start", "warn_at", "due_at"),
    [
        # "1 hari": due a working day later, warned after 80 % of its 7.5 h (6 h).
        (standard("P1D", "P1D"), wib(1, 5, 10), wib(1, 6, 8, 30), wib(1, 6, 10)),
        # "4 jam": warned after 3 h 12 min of working time.
        (standard("PT4H", "PT4H"), wib(1, 5, 10), wib(1, 5, 14, 12), wib(1, 5, 15)),
        # "15-30 menit" started just before the break.
        (standard("PT15M", "PT30M"), wib(1, 5, 11, 50), wib(1, 5, 13, 5), wib(1, 5, 13, 20)),
        # "1jam - 3hari".
        (standard("PT1H", "P3D"), wib(1, 5, 10), wib(1, 5, 11), wib(1, 8, 10)),
        # "1 hari kerja" from Friday before Independence Day: 6 h is Friday's 5 h + 1 h.
        (standard("P1D", "P1D"), wib(8, 14, 10), wib(8, 18, 9), wib(8, 18, 10, 30)),
        # Calendar basis: plain elapsed time, weekends included.
        (standard("P1D", "P1D", "calendar"), wib(1, 9, 10), wib(1, 10, 5, 12), wib(1, 10, 10)),
        (
            standard("PT15M", "PT30M", "calendar"),
            wib(1, 9, 12),
            wib(1, 9, 12, 15),
            wib(1, 9, 12, 30),
        ),
    ],
)
def test_deadlines(
    time_standard: TimeStandard, start: datetime, warn_at: datetime, due_at: datetime
) -> None:
    result = deadlines(time_standard, start, DEFAULT)
    assert (result.warn_at, result.due_at) == (warn_at, due_at)
    assert result.warn_at.tzinfo is UTC
    assert result.due_at.tzinfo is UTC


def test_deadlines_follow_the_local_calendar() -> None:
    one_day = standard("P1D", "P1D")
    # Received on Saturday: the whole of Monday, warned 6 h into it.
    saturday = deadlines(one_day, wib(1, 10, 10), DEFAULT)
    assert (saturday.warn_at, saturday.due_at) == (wib(1, 12, 15), wib(1, 12, 16, 30))
    # 6.25 h into a Ramadan Thursday, clamped to Friday's 6 h; 80 % of the 6.25 h span.
    ramadan_day = deadlines(one_day, wib(2, 26, 14, 45), LOCAL)
    assert (ramadan_day.warn_at, ramadan_day.due_at) == (wib(2, 27, 14, 15), wib(2, 27, 15, 30))


NAIVE = datetime(2026, 1, 5, 10)


@pytest.mark.parametrize(
    "call",
    [
        lambda: DEFAULT.is_working_time(NAIVE),
        lambda: DEFAULT.next_working_instant(NAIVE),
        lambda: DEFAULT.add_working_time(NAIVE, Duration(seconds=60)),
        lambda: DEFAULT.working_time_between(NAIVE, wib(1, 6)),
        lambda: DEFAULT.working_time_between(wib(1, 4), NAIVE),
        lambda: deadlines(standard("PT1H", "PT1H"), NAIVE, DEFAULT),
        lambda: deadlines(standard("PT1H", "PT1H", "calendar"), NAIVE, DEFAULT),
    ],
)
def test_naive_datetimes_are_rejected(call: object) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


@pytest.mark.parametrize(
    "build",
    [
        lambda: Interval(time(12), time(8)),
        lambda: Interval.parse("08:00"),
        lambda: hours("08:00-12:00", "11:00-14:00"),
        lambda: WeeklyHours(monday=(Interval(time(13), time(16)), Interval(time(8), time(12)))),
        lambda: ExtraWorkingDay(date(2026, 1, 10), (), "no hours"),
        lambda: SpecialHours(date(2026, 3, 1), date(2026, 2, 1), BENGKULU_HOURS, "reversed"),
        lambda: WorkingCalendar(timezone="Asia/Bengkulu"),
        lambda: WorkingCalendar(holiday_categories=("bank",)),
        lambda: WorkingCalendar(
            days_off=(DayOff(date(2026, 1, 10), "off"),),
            extra_working_days=(ExtraWorkingDay(date(2026, 1, 10), hours("08:00-12:00"), "on"),),
        ),
    ],
)
def test_invalid_data_is_rejected(build: object) -> None:
    assert callable(build)
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        build()


def test_intervals_round_trip_through_text() -> None:
    assert [str(interval) for interval in BENGKULU_HOURS.friday] == ["07:30-12:00", "13:30-16:30"]
    assert Interval.parse("07:30-12:00") == BENGKULU_HOURS.friday[0]


def test_calendars_are_hashable_values() -> None:
    rebuilt = WorkingCalendar(
        days_off=LOCAL.days_off,
        extra_working_days=LOCAL.extra_working_days,
        special_hours=LOCAL.special_hours,
    )
    assert rebuilt == LOCAL
    assert hash(rebuilt) == hash(LOCAL)
    assert rebuilt != DEFAULT


def test_without_holiday_categories_holidays_are_working_days() -> None:
    assert WorkingCalendar(holiday_categories=()).is_working_time(wib(8, 17, 10))
    public_only = WorkingCalendar(holiday_categories=("public",))
    assert public_only.is_working_time(wib(12, 24, 10))
    assert not public_only.is_working_time(wib(12, 25, 10))


def test_a_calendar_without_working_days_fails_instead_of_looping() -> None:
    closed = WorkingCalendar(weekly=WeeklyHours())
    with pytest.raises(ValueError, match="no working"):
        closed.add_working_time(wib(1, 5, 10), Duration(seconds=60))


# Property tests: bounded so the file stays fast; both calendars, all of 2026.
instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(JAKARTA)
)
seconds = st.integers(min_value=0, max_value=4 * DAY_LENGTH)
day_counts = st.integers(min_value=0, max_value=12)
calendars = st.sampled_from([DEFAULT, LOCAL])
bounded = settings(max_examples=150, deadline=None)
MICROSECOND = timedelta(microseconds=1)


@bounded
@given(calendars, instants, day_counts, seconds)
def test_adding_lands_in_working_hours(
    calendar: WorkingCalendar, start: datetime, days: int, secs: int
) -> None:
    duration = Duration(days=days, seconds=secs)
    result = calendar.add_working_time(start, duration)
    if duration == Duration():
        assert result == start
    else:
        # A result may close an interval (it is the earliest such instant): (start, end].
        assert calendar.is_working_time(result - MICROSECOND)


@bounded
@given(calendars, instants, instants, day_counts, seconds)
def test_adding_is_monotonic_in_the_start(
    calendar: WorkingCalendar, a: datetime, b: datetime, days: int, secs: int
) -> None:
    early, late = sorted((a, b))
    duration = Duration(days=days, seconds=secs)
    assert calendar.add_working_time(early, duration) <= calendar.add_working_time(late, duration)


@bounded
@given(calendars, instants, day_counts, day_counts, seconds, seconds)
def test_adding_is_monotonic_in_the_duration(
    calendar: WorkingCalendar, start: datetime, d1: int, d2: int, s1: int, s2: int
) -> None:
    (d_low, d_high), (s_low, s_high) = sorted((d1, d2)), sorted((s1, s2))
    add = calendar.add_working_time
    assert add(start, Duration(d_low, s_low)) <= add(start, Duration(d_high, s_low))
    assert add(start, Duration(d_low, s_low)) <= add(start, Duration(d_low, s_high))


@bounded
@given(calendars, instants, seconds, seconds)
def test_adding_seconds_is_additive(
    calendar: WorkingCalendar, start: datetime, a: int, b: int
) -> None:
    add = calendar.add_working_time
    assert add(add(start, Duration(seconds=a)), Duration(seconds=b)) == add(
        start, Duration(seconds=a + b)
    )


@bounded
@given(calendars, instants, seconds)
def test_working_time_between_inverts_adding(
    calendar: WorkingCalendar, start: datetime, secs: int
) -> None:
    end = calendar.add_working_time(start, Duration(seconds=secs))
    assert calendar.working_time_between(start, end) == timedelta(seconds=secs)


@bounded
@given(instants, day_counts)
def test_a_day_is_a_day_length_when_all_days_are_equal(start: datetime, days: int) -> None:
    assert DEFAULT.add_working_time(start, Duration(days=days)) == DEFAULT.add_working_time(
        start, Duration(seconds=days * DAY_LENGTH)
    )


def test_lateness_counts_whole_working_days_then_working_time() -> None:
    due = wib(11, 2, 10)  # Monday 2 November 2026, 10.00
    assert DEFAULT.working_lateness(due, wib(11, 2, 9)) == Duration()
    assert DEFAULT.working_lateness(due, due) == Duration()
    # Wednesday 11.30: two working days (Tuesday and Wednesday 10.00) and 1 h 30.
    late = DEFAULT.working_lateness(due, wib(11, 4, 11, 30))
    assert late == Duration(days=2, seconds=5400)
    assert late.isoformat() == "P2DT1H30M"


def test_lateness_over_a_weekend_is_working_time_only() -> None:
    due = wib(11, 6, 10)  # Friday
    now = wib(11, 9, 9)  # Monday 09.00, before Monday's 10.00
    late = DEFAULT.working_lateness(due, now)
    assert late.days == 0
    assert late.seconds == int(DEFAULT.working_time_between(due, now).total_seconds())
    # One working day later is as far into Monday's hours (08.00 + 2 h 30) as 10.00 is
    # into Friday's (07.30 + 2 h 30), as `add_working_time` counts a day.
    assert DEFAULT.add_working_time(due, Duration(days=1)) == wib(11, 9, 10, 30)
    assert DEFAULT.working_lateness(due, wib(11, 9, 10, 30)) == Duration(days=1)


def test_lateness_stops_counting_days_at_the_cap() -> None:
    due = wib(1, 5, 10)
    assert DEFAULT.working_lateness(due, wib(12, 1, 10), max_days=5) == Duration(days=5)
