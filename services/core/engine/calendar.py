"""The working calendar of a satker and the deadlines of time standards.

A `WorkingCalendar` says when a court works: weekly hours with breaks (local time in
its timezone), Indonesian national holidays and *cuti bersama* from the `holidays`
package, and local overrides (days off, extra working days, special hours such as
Ramadan). Everything is pure: instants come in as timezone-aware datetimes and results
go out in UTC.

The rules (also told to users in docs/time-standards.md):

* Working time is the union of the day's intervals, each half-open `[start, end)`:
  `is_working_time` is false at exactly 12:00 when the break starts at 12:00.
* Adding working *seconds* gives the earliest instant at which that much working
  time has elapsed since the start. A result may therefore be the end of an interval
  (Mon 08:00 + 4 h = Mon 12:00, not 13:00) but never lies in a break, a night, a
  weekend or a holiday. Adding zero returns the start unchanged.
* Adding N *days* (working days) keeps the position within the day. An instant's
  position is `(D, p)`: D is the latest working day whose opening is strictly before
  the instant and p is the working time elapsed since D's opening, at most D's length.
  The result is the instant p into the Nth working day after D, p clamped to that day's
  length. So Mon 10:00 + 1 day = Tue 10:00; Fri 10:00 (2.5 h after Friday's 07:30
  opening) + 1 day = Mon 10:30; Thu 16:00 + 1 day = Fri 16:00; an instant at or before
  an opening, or on a weekend, sits at the end of the previous working day, so Sat
  10:00 + 1 day = Mon 16:30 and Mon 08:00 + 1 day = Mon 16:30 (a whole working day).
  When every working day has the same length (7.5 h in the default hours) N days equal
  N × that length of working seconds.
* A duration's seconds are added after its days.
* Precedence for a date: an extra working day, else a local day off, else a national
  holiday, else the last special-hours range covering it, else the weekly hours.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from services.core.engine.definition import TimeStandard
from services.core.engine.durations import Duration

# A calendar without a working day for a whole year is a data error; stop rather than loop.
_SEARCH_LIMIT_DAYS = 400
_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, order=True)
class Interval:
    """Working hours within one local day, `[start, end)`."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("interval times are local wall-clock times, without tzinfo")
        if not self.start < self.end:
            raise ValueError(f"interval must end after it starts: {self}")

    @classmethod
    def parse(cls, text: str) -> Interval:
        """Read `"08:00-12:00"`, the form `str()` writes (and the database stores)."""
        start, sep, end = text.partition("-")
        if not sep:
            raise ValueError(f"not an interval like '08:00-12:00': {text!r}")
        return cls(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


def _clock(value: time) -> str:
    return value.isoformat(timespec="minutes" if not value.second else "seconds")


DayHours = tuple[Interval, ...]


def hours(*spans: str) -> DayHours:
    """A day's hours from texts: `hours("08:00-12:00", "13:00-16:30")`."""
    day = tuple(Interval.parse(span) for span in spans)
    _check_day(day)
    return day


def _check_day(day: DayHours) -> None:
    for earlier, later in pairwise(day):
        if later.start < earlier.end:
            raise ValueError(f"intervals must be sorted and apart: {earlier}, {later}")


@dataclass(frozen=True)
class WeeklyHours:
    """Working intervals for each weekday; a day without intervals is a day off."""

    monday: DayHours = ()
    tuesday: DayHours = ()
    wednesday: DayHours = ()
    thursday: DayHours = ()
    friday: DayHours = ()
    saturday: DayHours = ()
    sunday: DayHours = ()

    def __post_init__(self) -> None:
        for name in _WEEKDAYS:
            _check_day(getattr(self, name))

    def on(self, weekday: int) -> DayHours:
        """Hours for `date.weekday()` (Monday is 0)."""
        day: DayHours = getattr(self, _WEEKDAYS[weekday])
        return day


_BENGKULU_MON_THU = hours("08:00-12:00", "13:00-16:30")
# Decree of the Bengkulu high court for its district courts (DOMAIN.md).
BENGKULU_HOURS = WeeklyHours(
    monday=_BENGKULU_MON_THU,
    tuesday=_BENGKULU_MON_THU,
    wednesday=_BENGKULU_MON_THU,
    thursday=_BENGKULU_MON_THU,
    friday=hours("07:30-12:00", "13:30-16:30"),
)

_RAMADAN_MON_THU = hours("08:00-12:00", "12:30-15:00")
# Ramadan hours are set each year by circular; this is a typical reading, not a fact.
RAMADAN_HOURS = WeeklyHours(
    monday=_RAMADAN_MON_THU,
    tuesday=_RAMADAN_MON_THU,
    wednesday=_RAMADAN_MON_THU,
    thursday=_RAMADAN_MON_THU,
    friday=hours("08:00-11:30", "13:00-15:30"),
)


@dataclass(frozen=True)
class DayOff:
    """A local day off (e.g. a regional holiday or a decree the package does not know)."""

    day: date
    reason: str


@dataclass(frozen=True)
class ExtraWorkingDay:
    """A date made a working day with the given hours, even a weekend or a holiday
    (e.g. a Saturday replacing a day off, or a cuti bersama date cancelled by decree)."""

    day: date
    hours: DayHours
    reason: str

    def __post_init__(self) -> None:
        if not self.hours:
            raise ValueError("an extra working day needs working hours")
        _check_day(self.hours)


@dataclass(frozen=True)
class SpecialHours:
    """Different weekly hours from `start` to `end`, both inclusive (e.g. Ramadan)."""

    start: date
    end: date
    hours: WeeklyHours
    reason: str

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"special hours end before they start: {self.start}..{self.end}")

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


def ramadan(start: date, end: date, hours: WeeklyHours = RAMADAN_HOURS) -> SpecialHours:
    """Ramadan hours from `start` to `end` (inclusive); pass the year's circular's hours."""
    return SpecialHours(start=start, end=end, hours=hours, reason="Ramadan")


_HOLIDAY_CATEGORIES = frozenset(holidays.country_holidays("ID").supported_categories)


@functools.cache
def _national_days_off(year: int, categories: tuple[str, ...]) -> frozenset[date]:
    if not categories:
        return frozenset()
    found = holidays.country_holidays("ID", years=year, categories=categories)
    return frozenset(found.keys())


_Span = tuple[datetime, datetime]
# Days whose working spans one calendar keeps (about ten years).
_SPAN_CACHE_DAYS = 4096


@dataclass(frozen=True)
class WorkingCalendar:
    """When a satker works. Hashable, so it can key caches; plain data, so the database
    layer can store the parts and rebuild it."""

    timezone: str = "Asia/Jakarta"
    weekly: WeeklyHours = BENGKULU_HOURS
    # `public`: national holidays; `government`: cuti bersama. Empty: no national holidays.
    holiday_categories: tuple[str, ...] = ("public", "government")
    days_off: tuple[DayOff, ...] = ()
    extra_working_days: tuple[ExtraWorkingDay, ...] = ()
    special_hours: tuple[SpecialHours, ...] = ()

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown timezone: {self.timezone!r}") from error
        unknown = set(self.holiday_categories) - _HOLIDAY_CATEGORIES
        if unknown:
            raise ValueError(f"unknown holiday categories: {sorted(unknown)}")
        clashes = {off.day for off in self.days_off} & {
            extra.day for extra in self.extra_working_days
        }
        if clashes:
            raise ValueError(f"dates both off and extra working: {sorted(clashes)}")
        extra_days = [extra.day for extra in self.extra_working_days]
        if len(set(extra_days)) != len(extra_days):
            raise ValueError("an extra working day is listed twice")

    @functools.cached_property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @functools.cached_property
    def _extra_by_day(self) -> dict[date, DayHours]:
        return {extra.day: extra.hours for extra in self.extra_working_days}

    @functools.cached_property
    def _local_days_off(self) -> frozenset[date]:
        return frozenset(off.day for off in self.days_off)

    def hours_on(self, day: date) -> DayHours:
        """The local working intervals of `day`; empty when the court is closed."""
        extra = self._extra_by_day.get(day)
        if extra is not None:
            return extra
        if day in self._local_days_off:
            return ()
        if day in _national_days_off(day.year, self.holiday_categories):
            return ()
        for special in reversed(self.special_hours):
            if special.covers(day):
                return special.hours.on(day.weekday())
        return self.weekly.on(day.weekday())

    def is_working_day(self, day: date) -> bool:
        return bool(self.hours_on(day))

    def is_working_time(self, instant: datetime) -> bool:
        instant = _utc(instant)
        return any(start <= instant < end for start, end in self._spans(self._local(instant)))

    def next_working_instant(self, instant: datetime) -> datetime:
        """`instant` itself when it is working time, else the next opening (UTC)."""
        instant = _utc(instant)
        for day in self._days_from(self._local(instant)):
            for start, end in self._spans(day):
                if instant < end:
                    return max(start, instant)
        raise AssertionError("unreachable: _days_from raises first")

    def add_working_time(self, start: datetime, duration: Duration) -> datetime:
        """`start` plus `duration` in working time (see the module docstring), in UTC."""
        if duration.days < 0 or duration.seconds < 0:
            raise ValueError(f"negative duration: {duration}")
        instant = _utc(start)
        if duration.days:
            instant = self._add_days(instant, duration.days)
        return self._add(instant, timedelta(seconds=duration.seconds))

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time from `a` to `b`; negative when `b` comes before `a`."""
        a, b = _utc(a), _utc(b)
        if b < a:
            return -self.working_time_between(b, a)
        total = _ZERO
        day, last = self._local(a), self._local(b)
        while day <= last:
            for start, end in self._spans(day):
                total += max(_ZERO, min(end, b) - max(start, a))
            day += _ONE_DAY
        return total

    def working_lateness(self, due: datetime, now: datetime, *, max_days: int = 999) -> Duration:
        """How late `now` is past `due`, as people say it: whole working days (the same
        working moment on a later working day, as `add_working_time` counts them) and
        the working time after the last of them. Zero when not late; the days stop at
        `max_days`, with no hours after them (a task years late says 999 days: the walk
        over its days costs about 2.5 µs each)."""
        due, now = _utc(due), _utc(now)
        if now <= due:
            return Duration()
        day, elapsed = self._position(due)
        days, mark = 0, due
        while days < max_days:
            day = self._next_working_day(day)
            spans = self._spans(day)
            later = self._add(spans[0][0], min(elapsed, sum((e - s for s, e in spans), _ZERO)))
            if later > now:
                break
            days, mark = days + 1, later
        if days == max_days:
            return Duration(days=days)
        rest = self.working_time_between(mark, now)
        return Duration(days=days, seconds=int(rest.total_seconds()))

    def _add(self, instant: datetime, amount: timedelta) -> datetime:
        """The earliest instant by which `amount` of working time has elapsed."""
        if amount <= _ZERO:
            return instant
        for day in self._days_from(self._local(instant)):
            for start, end in self._spans(day):
                if end <= instant:
                    continue
                begin = max(start, instant)
                if amount <= end - begin:
                    return begin + amount
                amount -= end - begin
        raise AssertionError("unreachable: _days_from raises first")

    def _add_days(self, instant: datetime, count: int) -> datetime:
        day, elapsed = self._position(instant)
        for _ in range(count):
            day = self._next_working_day(day)
        spans = self._spans(day)
        elapsed = min(elapsed, sum((end - start for start, end in spans), _ZERO))
        return self._add(spans[0][0], elapsed)

    def _position(self, instant: datetime) -> tuple[date, timedelta]:
        """The working day an instant belongs to and the working time elapsed in it."""
        day = self._local(instant)
        for _ in range(_SEARCH_LIMIT_DAYS):
            spans = self._spans(day)
            if spans and spans[0][0] < instant:
                elapsed = sum(
                    (max(_ZERO, min(end, instant) - start) for start, end in spans), _ZERO
                )
                return day, elapsed
            day -= _ONE_DAY
        raise ValueError(f"no working day in the {_SEARCH_LIMIT_DAYS} days before {instant}")

    def _next_working_day(self, day: date) -> date:
        for candidate in self._days_from(day + _ONE_DAY):
            if self._spans(candidate):
                return candidate
        raise AssertionError("unreachable: _days_from raises first")

    def _days_from(self, day: date) -> Iterator[date]:
        for offset in range(_SEARCH_LIMIT_DAYS):
            yield day + timedelta(days=offset)
        raise ValueError(f"no working time in the {_SEARCH_LIMIT_DAYS} days from {day}")

    @functools.cached_property
    def _span_cache(self) -> dict[date, tuple[_Span, ...]]:
        return {}

    def _spans(self, day: date) -> tuple[_Span, ...]:
        # Every deadline walks days; the calendar is immutable, so a day's spans are kept.
        cache = self._span_cache
        spans = cache.get(day)
        if spans is None:
            if len(cache) >= _SPAN_CACHE_DAYS:
                cache.clear()
            # Converting each bound to UTC keeps arithmetic right in zones with DST too.
            spans = cache[day] = tuple(
                (
                    datetime.combine(day, interval.start, self._zone).astimezone(UTC),
                    datetime.combine(day, interval.end, self._zone).astimezone(UTC),
                )
                for interval in self.hours_on(day)
            )
        return spans

    def _local(self, instant: datetime) -> date:
        return instant.astimezone(self._zone).date()


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant must be timezone-aware: {instant.isoformat()}")
    return instant.astimezone(UTC)


@dataclass(frozen=True)
class Deadlines:
    """When a step's time standard says to warn, and when the step is due (UTC)."""

    warn_at: datetime
    due_at: datetime


def deadlines(standard: TimeStandard, start: datetime, calendar: WorkingCalendar) -> Deadlines:
    """`due_at` is start + max; `warn_at` is start + min for a range, and for a single value
    the point where 80 % of the (working, or elapsed) time up to `due_at` has passed."""
    low, high = standard.min_duration, standard.max_duration
    if standard.basis == "calendar":
        begin = _utc(start)
        due_at = begin + _elapsed(high)
        if standard.is_range:
            return Deadlines(warn_at=begin + _elapsed(low), due_at=due_at)
        return Deadlines(warn_at=begin + (due_at - begin) * 4 / 5, due_at=due_at)
    due_at = calendar.add_working_time(start, high)
    if standard.is_range:
        return Deadlines(warn_at=calendar.add_working_time(start, low), due_at=due_at)
    span = calendar.working_time_between(start, due_at)
    return Deadlines(warn_at=calendar._add(_utc(start), span * 4 / 5), due_at=due_at)


def _elapsed(duration: Duration) -> timedelta:
    return timedelta(days=duration.days, seconds=duration.seconds)


class WorkingClock:
    """`WorkingCalendar.working_time_between` for many spans at once (a report over a
    year of tasks): working seconds from a fixed origin are kept per local day, so each
    span is two lookups instead of a walk over its days. Instants outside the days it was
    built for are handed to the calendar."""

    def __init__(self, calendar: WorkingCalendar, first: date, last: date) -> None:
        self.calendar = calendar
        zone = calendar._zone
        # The local midnights, as POSIX timestamps, and what each day holds.
        self._midnights: list[float] = []
        self._days: list[tuple[float, tuple[tuple[float, float], ...]]] = []
        total = 0.0
        day = first - _ONE_DAY
        while day <= last + _ONE_DAY:
            self._midnights.append(datetime.combine(day, time(), zone).timestamp())
            spans = tuple(
                (start.timestamp(), end.timestamp()) for start, end in calendar._spans(day)
            )
            self._days.append((total, spans))
            total += sum(end - start for start, end in spans)
            day += _ONE_DAY
        self._end = datetime.combine(day, time(), zone).timestamp()

    def _at(self, moment: float) -> float:
        index = bisect.bisect_right(self._midnights, moment) - 1
        before, spans = self._days[index]
        for start, end in spans:
            if moment <= start:
                break
            before += min(moment, end) - start
        return before

    def offset(self, instant: datetime) -> float | None:
        """Working seconds from the clock's origin to `instant`; None outside its days.
        The difference of two offsets is the working time between their instants."""
        if instant.tzinfo is None:
            raise ValueError("instants must be timezone-aware")
        moment = instant.timestamp()
        if moment < self._midnights[0] or moment >= self._end:
            return None
        return self._at(moment)

    def seconds_between(self, a: datetime, b: datetime) -> float:
        """Working seconds from `a` to `b` (negative when `b` comes first)."""
        if a.tzinfo is None or b.tzinfo is None:
            raise ValueError("instants must be timezone-aware")
        first, second = a.timestamp(), b.timestamp()
        low, high = min(first, second), max(first, second)
        if low < self._midnights[0] or high >= self._end:
            return self.calendar.working_time_between(a, b).total_seconds()
        return self._at(second) - self._at(first)
