"""Report periods, and dates and numbers as Indonesian papers write them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.core.dates import long_date
from services.core.reports.periods import (
    InvalidPeriod,
    between,
    local_stamp,
    number_id,
    parse,
    percent_id,
    working_span_id,
)


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2026", date(2026, 1, 1), date(2026, 12, 31)),
        ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31)),
        ("2024-Q1", date(2024, 1, 1), date(2024, 3, 31)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
    ],
)
def test_periods(text: str, first: date, last: date) -> None:
    period = parse(text)
    assert (period.first, period.last, period.label) == (first, last, text)


@pytest.mark.parametrize("text", ["9999-Q4", "1999", "3000-11", "2026-Q5", "2026-13", "26", ""])
def test_a_period_outside_the_recorded_years_or_misspelt_is_refused(text: str) -> None:
    # 9999-Q4 ends on 31 December 9999, whose next day does not exist (it was a 500).
    with pytest.raises(InvalidPeriod):
        parse(text)


def test_a_span_of_dates_is_bounded() -> None:
    with pytest.raises(InvalidPeriod):
        between(date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(InvalidPeriod):
        between(date(2025, 1, 1), date(2026, 12, 31))


def test_the_bounds_are_local_midnights() -> None:
    start, end = parse("2026-Q4").bounds("Asia/Jakarta")
    assert (start, end) == (
        datetime(2026, 9, 30, 17, tzinfo=UTC),
        datetime(2026, 12, 31, 17, tzinfo=UTC),
    )


def test_indonesian_dates_and_numbers() -> None:
    assert long_date(date(2026, 12, 31)) == "31 Desember 2026"
    assert local_stamp(datetime(2026, 12, 2, 7, 30, tzinfo=UTC), "Asia/Jakarta") == (
        "2 Desember 2026, 14.30 WIB"
    )
    assert local_stamp(datetime(2026, 12, 2, 7, 30, tzinfo=UTC), "Asia/Makassar").endswith(
        "15.30 WITA"
    )
    assert percent_id(87.5) == "87,5 %"
    assert percent_id(None) == "–"
    assert number_id(1234.5) == "1.234,5"
    assert working_span_id(2 * 8 * 3600 + 3 * 3600) == "2 hari kerja 3 jam"
    assert working_span_id(45 * 60) == "45 menit"
