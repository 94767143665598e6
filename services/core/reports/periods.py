"""Report periods and how they are written in Indonesian papers.

A period is a span of local dates of the satker (`from` and `to` both included); it
becomes the UTC instants from the local midnight starting `from` to the one ending `to`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.core.dates import long_date
from services.core.errors import AlurError

# Long enough for a year, leap or not, with room; longer spans are refused.
MAX_DAYS = 400
_PERIOD = re.compile(r"^(?P<year>\d{4})(?:-(?:Q(?P<quarter>[1-4])|(?P<month>0[1-9]|1[0-2])))?$")


class InvalidPeriod(AlurError):
    code = "invalid_period"
    status = 422
    title = "The report period is not valid"


@dataclass(frozen=True)
class Period:
    first: date
    last: date
    label: str

    def bounds(self, timezone: str) -> tuple[datetime, datetime]:
        """The UTC instants [start, end) of the period in `timezone`."""
        zone = ZoneInfo(timezone)
        start = datetime.combine(self.first, time(), zone).astimezone(UTC)
        end = datetime.combine(self.last + timedelta(days=1), time(), zone).astimezone(UTC)
        return start, end

    @property
    def label_id(self) -> str:
        return f"{long_date(self.first)} s.d. {long_date(self.last)}"


def between(first: date, last: date) -> Period:
    if last < first:
        raise InvalidPeriod(f"`to` ({last}) comes before `from` ({first})")
    if (last - first).days >= MAX_DAYS:
        raise InvalidPeriod(f"A report covers at most {MAX_DAYS} days; ask for a shorter period")
    if first.year < 2000 or last.year > 2999:
        raise InvalidPeriod("The period lies outside the years Alur records (2000-2999)")
    return Period(first, last, f"{first.isoformat()}/{last.isoformat()}")


def parse(text: str) -> Period:
    """`2026` (the year), `2026-Q4` (a quarter) or `2026-11` (a month)."""
    match = _PERIOD.match(text)
    if match is None:
        raise InvalidPeriod(
            f"period {text[:20]!r} is not a year, quarter or month such as 2026, 2026-Q4, 2026-11"
        )
    year = int(match["year"])
    if not 2000 <= year <= 2999:
        raise InvalidPeriod(f"The year {year} lies outside the years Alur records (2000-2999)")
    if match["quarter"]:
        quarter = int(match["quarter"])
        first = date(year, 3 * quarter - 2, 1)
        last = _month_end(year, 3 * quarter)
    elif match["month"]:
        first = date(year, int(match["month"]), 1)
        last = _month_end(year, first.month)
    else:
        first, last = date(year, 1, 1), date(year, 12, 31)
    period = between(first, last)
    return Period(period.first, period.last, text)


def _month_end(year: int, month: int) -> date:
    following = date(year + (month == 12), month % 12 + 1, 1)
    return following - timedelta(days=1)


def local_stamp(instant: datetime, timezone: str) -> str:
    """`2 Desember 2026, 14.30 WIB` (the zone's abbreviation as Indonesians write it)."""
    local = instant.astimezone(ZoneInfo(timezone))
    zone = {"Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB", "Asia/Makassar": "WITA"}.get(
        timezone, "WIT" if timezone == "Asia/Jayapura" else local.tzname() or timezone
    )
    return f"{long_date(local.date())}, {local:%H.%M} {zone}"


def number_id(value: float, decimals: int = 1) -> str:
    """`87,5` and `1.234,5`: Indonesian decimal comma and thousands point."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def percent_id(value: float | None) -> str:
    """`87,5 %`; a dash when there is nothing to measure."""
    return "–" if value is None else f"{number_id(value)} %"


def working_span_id(seconds: float, day_seconds: float = 8 * 3600) -> str:
    """`2 hari kerja 3 jam` for a working-time span, counting `day_seconds` a day."""
    whole = round(seconds)
    days, rest = divmod(whole, round(day_seconds))
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = []
    if days:
        parts.append(f"{days} hari kerja")
    if hours:
        parts.append(f"{hours} jam")
    if minutes and not days:
        parts.append(f"{minutes} menit")
    return " ".join(parts) or "0 menit"


def today(timezone: str, now: datetime) -> date:
    """The satker's local date at `now`."""
    return now.astimezone(ZoneInfo(timezone)).date()
