"""`WorkingClock` gives the calendar's own working time between two instants, however
they fall: nights, weekends, holidays, local days off, Ramadan hours, across years."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.engine.calendar import DayOff, WorkingCalendar, WorkingClock, ramadan

CALENDARS = [
    WorkingCalendar(),
    WorkingCalendar(
        days_off=(DayOff(date(2026, 11, 16), "Hari jadi Provinsi Bengkulu"),),
        special_hours=(ramadan(date(2026, 2, 18), date(2026, 3, 19)),),
    ),
    WorkingCalendar(timezone="Asia/Jayapura", holiday_categories=()),
]
CLOCKS = [WorkingClock(calendar, date(2026, 1, 1), date(2026, 12, 31)) for calendar in CALENDARS]
INSTANTS = st.datetimes(
    min_value=datetime(2025, 12, 20), max_value=datetime(2027, 1, 10), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(CALENDARS) - 1), a=INSTANTS, b=INSTANTS)
def test_the_clock_agrees_with_the_calendar(index: int, a: datetime, b: datetime) -> None:
    expected = CALENDARS[index].working_time_between(a, b).total_seconds()
    clock = CLOCKS[index]
    assert abs(clock.seconds_between(a, b) - expected) < 1e-3
    start, end = clock.offset(a), clock.offset(b)
    if start is not None and end is not None:
        assert abs((end - start) - expected) < 1e-3
    else:  # outside the days the clock was built for: 2025-12-31 to 2027-01-01, local
        assert min(a, b) < datetime(2026, 1, 1, tzinfo=UTC) or max(a, b) > datetime(
            2026, 12, 31, tzinfo=UTC
        )


def test_a_known_span() -> None:
    # Friday 16:00 WIB to Monday 09:00 WIB: Friday's last half hour (16:00-16:30), and
    # Monday's first hour (08:00-09:00).
    friday = datetime(2026, 11, 20, 9, tzinfo=UTC)
    monday = friday + timedelta(days=2, hours=17)
    assert CLOCKS[0].seconds_between(friday, monday) == 1.5 * 3600
    assert CLOCKS[0].seconds_between(monday, friday) == -1.5 * 3600
