"""When a SOP review falls due: calendar months, kept inside the target month."""

from __future__ import annotations

from datetime import date

import pytest

from services.core.reviews.schedule import add_months, due_on, review_period

D = date


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (D(2026, 1, 31), 1, D(2026, 2, 28)),
        (D(2028, 1, 31), 1, D(2028, 2, 29)),  # a leap year
        (D(2026, 1, 31), 3, D(2026, 4, 30)),
        (D(2026, 3, 31), -1, D(2026, 2, 28)),
        (D(2026, 12, 15), 1, D(2027, 1, 15)),
        (D(2026, 1, 15), -1, D(2025, 12, 15)),
        (D(2024, 2, 29), 12, D(2025, 2, 28)),
        (D(2024, 2, 29), 48, D(2028, 2, 29)),
        (D(2026, 5, 31), 60, D(2031, 5, 31)),
        (D(2026, 8, 31), 0, D(2026, 8, 31)),
    ],
)
def test_add_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


@pytest.mark.parametrize(
    ("effective", "months", "last", "expected"),
    [
        # Never reviewed: from the effective date.
        (D(2026, 1, 31), 12, None, D(2027, 1, 31)),
        (D(2026, 1, 31), 1, None, D(2026, 2, 28)),
        # Reviewed since: from the review, whether late or early.
        (D(2026, 1, 31), 12, D(2027, 2, 10), D(2028, 2, 10)),
        (D(2026, 1, 31), 6, D(2026, 7, 31), D(2027, 1, 31)),
        # A version that took effect after the last review starts its own cycle.
        (D(2027, 6, 1), 12, D(2027, 2, 10), D(2028, 6, 1)),
    ],
)
def test_due_on(effective: date, months: int, last: date | None, expected: date) -> None:
    assert due_on(effective, months, last) == expected


def test_the_period_looks_back_one_interval_at_most() -> None:
    # On time: since the effective date.
    assert review_period(D(2026, 1, 31), 12, None, D(2027, 1, 31)) == (
        D(2026, 1, 31),
        D(2027, 1, 31),
    )
    # Since the last review.
    assert review_period(D(2020, 1, 1), 12, D(2026, 3, 5), D(2027, 3, 5)) == (
        D(2026, 3, 5),
        D(2027, 3, 5),
    )
    # Years overdue: the latest interval only.
    assert review_period(D(2015, 3, 1), 12, None, D(2026, 12, 4)) == (
        D(2025, 12, 4),
        D(2026, 12, 4),
    )
    # An effective date in the future (the review is not due): an empty span of today.
    assert review_period(D(2027, 1, 1), 12, None, D(2026, 12, 4)) == (
        D(2026, 12, 4),
        D(2026, 12, 4),
    )
