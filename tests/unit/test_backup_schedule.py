"""Which working days passed without a successful SIPP check: the satker's own calendar
decides (weekends, holidays, local days off), and a day counts once it has been open for
`CHECK_GRACE` (2 h)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.core.engine.calendar import DayOff, WorkingCalendar
from services.core.sipp.service import MISSED_LOOKBACK_DAYS, working_days_missed

# No national holidays, so the week below is plain; Wednesday 25 November is a local day off.
CALENDAR = WorkingCalendar(
    holiday_categories=(), days_off=(DayOff(date(2026, 11, 25), "test: a local day off"),)
)


def wib(day: int, hour: int, minute: int = 0) -> datetime:
    """November 2026 in Bengkulu (UTC+7): Monday to Thursday open at 08:00."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=7)


FRIDAY_CHECK = wib(20, 8, 0)


@pytest.mark.parametrize(
    ("now", "missed"),
    [
        (wib(21, 12), 0),  # Saturday
        (wib(22, 23), 0),  # Sunday night
        (wib(23, 9, 59), 0),  # Monday, open for less than the grace
        (wib(23, 10), 1),  # Monday, open for the grace: its check is missing
        (wib(24, 11), 2),  # Tuesday
        (wib(25, 11), 2),  # the day off is not missed
        (wib(26, 11), 3),  # Thursday
    ],
)
def test_days_after_the_last_success(now: datetime, missed: int) -> None:
    assert (
        working_days_missed(CALENDAR, last_success=FRIDAY_CHECK, configured_at=wib(1, 0), now=now)
        == missed
    )


def test_a_success_covers_its_own_day_even_late() -> None:
    late = wib(23, 15)
    assert working_days_missed(CALENDAR, last_success=late, configured_at=wib(1, 0), now=late) == 0
    assert (
        working_days_missed(CALENDAR, last_success=late, configured_at=wib(1, 0), now=wib(24, 10))
        == 1
    )


def test_never_successful_counts_days_that_opened_after_configuration() -> None:
    configured = wib(24, 12)  # Tuesday noon: that day's window had opened already
    for now, missed in [(wib(24, 16), 0), (wib(25, 16), 0), (wib(26, 9, 29), 0), (wib(26, 10), 1)]:
        assert (
            working_days_missed(CALENDAR, last_success=None, configured_at=configured, now=now)
            == missed
        ), now


def test_counting_is_bounded() -> None:
    long_ago = wib(1, 8) - timedelta(days=400)
    missed = working_days_missed(
        CALENDAR, last_success=long_ago, configured_at=long_ago, now=wib(26, 11)
    )
    assert 0 < missed <= MISSED_LOOKBACK_DAYS
