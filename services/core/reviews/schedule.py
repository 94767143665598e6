"""When a SOP's review falls due: pure date arithmetic, no I/O.

A review falls due `review_months` after the SOP version took effect, or after the
satker's last completed review of the SOP when that is later. Months are calendar
months; a day the target month lacks becomes its last day (31 January + 1 month is
28 or 29 February), as `dateutil.relativedelta` and the courts' own diaries count.
"""

from __future__ import annotations

from calendar import monthrange
from datetime import date


def add_months(day: date, months: int) -> date:
    """`day` moved by `months` calendar months (negative: back), kept in the month."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))


def due_on(effective: date, review_months: int, last_completed: date | None) -> date:
    """The day the next review falls due."""
    base = effective if last_completed is None else max(effective, last_completed)
    return add_months(base, review_months)


def review_period(
    effective: date, review_months: int, last_completed: date | None, today: date
) -> tuple[date, date]:
    """The local dates whose work a review opened `today` looks back on: since the
    version took effect or the last review, but no more than `review_months` (a review
    opened long overdue reads the latest interval, not the years before it)."""
    base = effective if last_completed is None else max(effective, last_completed)
    first = max(base, add_months(today, -review_months))
    return min(first, today), today
