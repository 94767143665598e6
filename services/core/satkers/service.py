"""The satker tree as an in-memory directory, and each satker's working calendar."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.engine.calendar import (
    DayOff,
    ExtraWorkingDay,
    Interval,
    SpecialHours,
    WeeklyHours,
    WorkingCalendar,
)
from services.core.errors import AlurError, Conflict, NotFound
from services.core.satkers.models import CalendarOverrideRecord, SatkerRecord

ADMIN_ROLE = "admin"
# Calendars change rarely (a decree, Ramadan); every process re-reads them this often.
CALENDAR_CACHE_SECONDS = 60.0


class SatkerNotFound(NotFound):
    code = "satker_not_found"
    title = "No such satker"


class SatkerExists(Conflict):
    code = "satker_exists"
    title = "The satker already exists"


class InvalidCalendarOverride(AlurError):
    code = "invalid_calendar_override"
    status = 422
    title = "The calendar override is not valid"


@dataclass(frozen=True)
class Satker:
    id: str
    name: str
    parent_id: str | None
    lane_role: str | None
    timezone: str


class SatkerDirectory:
    """Who may see what: a satker sees itself and every satker below it."""

    def __init__(self, satkers: Iterable[Satker]) -> None:
        self._by_id = {satker.id: satker for satker in satkers}

    def __contains__(self, satker_id: str) -> bool:
        return satker_id in self._by_id

    def get(self, satker_id: str) -> Satker:
        try:
            return self._by_id[satker_id]
        except KeyError:
            raise SatkerNotFound(f"No satker {satker_id!r}") from None

    def all(self) -> list[Satker]:
        return sorted(self._by_id.values(), key=lambda satker: satker.id)

    def ancestors(self, satker_id: str) -> list[str]:
        chain: list[str] = []
        current = self._by_id.get(satker_id)
        while current is not None and current.parent_id and current.parent_id not in chain:
            chain.append(current.parent_id)
            current = self._by_id.get(current.parent_id)
        return chain

    def visible_from(self, satker_id: str) -> set[str]:
        """`satker_id` and all its descendants."""
        return {sid for sid in self._by_id if sid == satker_id or satker_id in self.ancestors(sid)}

    def effective_roles(
        self, roles: frozenset[str], actor_satker: str, target: str
    ) -> frozenset[str]:
        """The roles an actor may use on `target`'s instances.

        In its own satker, all of them. From a parent court, only that court's own lane
        (e.g. `pt` for the high court) and `admin`: a high court's Kasubbag is not the
        district court's Kasubbag.
        """
        if actor_satker == target:
            return roles
        if actor_satker not in self.ancestors(target):
            return frozenset()
        own_lane = self._by_id[actor_satker].lane_role
        return roles & {role for role in (own_lane, ADMIN_ROLE) if role}


async def load_directory(session: AsyncSession) -> SatkerDirectory:
    records = (await session.scalars(select(SatkerRecord))).all()
    return SatkerDirectory(
        Satker(
            id=record.id,
            name=record.name,
            parent_id=record.parent_id,
            lane_role=record.lane_role,
            timezone=record.timezone,
        )
        for record in records
    )


async def create_satker(
    session: AsyncSession,
    *,
    satker_id: str,
    name: str,
    parent_id: str | None,
    lane_role: str | None,
    timezone: str,
    now: datetime,
) -> SatkerRecord:
    if await session.get(SatkerRecord, satker_id) is not None:
        raise SatkerExists(f"Satker {satker_id!r} already exists")
    if parent_id is not None and await session.get(SatkerRecord, parent_id) is None:
        raise SatkerNotFound(f"No parent satker {parent_id!r}")
    WorkingCalendar(timezone=timezone)  # refuses an unknown timezone
    record = SatkerRecord(
        id=satker_id,
        name=name,
        parent_id=parent_id,
        lane_role=lane_role,
        timezone=timezone,
        created_at=now,
    )
    session.add(record)
    await session.flush()
    return record


# --- calendars -------------------------------------------------------------------------

OVERRIDE_KINDS = ("day_off", "extra_working_day", "special_hours")


def _weekly(hours: dict[str, Any]) -> WeeklyHours:
    return WeeklyHours(
        **{day: tuple(Interval.parse(span) for span in spans) for day, spans in hours.items()}
    )


def _days(start: date, end: date) -> list[date]:
    return [date.fromordinal(n) for n in range(start.toordinal(), end.toordinal() + 1)]


def build_calendar(timezone: str, overrides: Iterable[CalendarOverrideRecord]) -> WorkingCalendar:
    """The calendar of a satker: default hours and national holidays, then its overrides.

    `hours` is `{"monday": ["08:00-12:00", ...], ...}` for special hours, and
    `{"hours": ["08:00-12:00", ...]}` for an extra working day.
    """
    days_off: list[DayOff] = []
    extra: list[ExtraWorkingDay] = []
    special: list[SpecialHours] = []
    try:
        for override in overrides:
            if override.kind == "day_off":
                days_off += [
                    DayOff(day, override.reason)
                    for day in _days(override.start_date, override.end_date)
                ]
            elif override.kind == "extra_working_day":
                spans = tuple(
                    Interval.parse(span) for span in (override.hours or {}).get("hours", ())
                )
                extra += [
                    ExtraWorkingDay(day, spans, override.reason)
                    for day in _days(override.start_date, override.end_date)
                ]
            elif override.kind == "special_hours":
                special.append(
                    SpecialHours(
                        override.start_date,
                        override.end_date,
                        _weekly(override.hours or {}),
                        override.reason,
                    )
                )
            else:
                raise ValueError(f"unknown override kind {override.kind!r}")
        return WorkingCalendar(
            timezone=timezone,
            days_off=tuple(days_off),
            extra_working_days=tuple(extra),
            special_hours=tuple(special),
        )
    except (ValueError, TypeError) as exc:
        raise InvalidCalendarOverride(str(exc)) from exc


class CalendarProvider:
    """Per-process cache of satker calendars, refreshed every `CALENDAR_CACHE_SECONDS`."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, WorkingCalendar]] = {}

    def invalidate(self, satker_id: str) -> None:
        self._cache.pop(satker_id, None)

    async def get(self, session: AsyncSession, satker: Satker) -> WorkingCalendar:
        cached = self._cache.get(satker.id)
        if cached is not None and time.monotonic() - cached[0] < CALENDAR_CACHE_SECONDS:
            return cached[1]
        overrides = (
            await session.scalars(
                select(CalendarOverrideRecord)
                .where(col(CalendarOverrideRecord.satker_id) == satker.id)
                .order_by(col(CalendarOverrideRecord.start_date), col(CalendarOverrideRecord.id))
            )
        ).all()
        calendar = build_calendar(satker.timezone, overrides)
        self._cache[satker.id] = (time.monotonic(), calendar)
        return calendar


async def add_override(
    session: AsyncSession,
    *,
    satker: Satker,
    kind: str,
    start_date: date,
    end_date: date,
    hours: dict[str, Any] | None,
    reason: str,
    now: datetime,
) -> CalendarOverrideRecord:
    if kind not in OVERRIDE_KINDS:
        raise InvalidCalendarOverride(f"kind must be one of {', '.join(OVERRIDE_KINDS)}")
    if end_date < start_date:
        raise InvalidCalendarOverride(f"end_date {end_date} is before start_date {start_date}")
    record = CalendarOverrideRecord(
        satker_id=satker.id,
        kind=kind,
        start_date=start_date,
        end_date=end_date,
        hours=hours,
        reason=reason,
        created_at=now,
    )
    # Validate by building the calendar it would produce, before anything is stored.
    build_calendar(satker.timezone, [record])
    session.add(record)
    await session.flush()
    return record


async def list_overrides(session: AsyncSession, satker_id: str) -> list[CalendarOverrideRecord]:
    query = (
        select(CalendarOverrideRecord)
        .where(col(CalendarOverrideRecord.satker_id) == satker_id)
        .order_by(col(CalendarOverrideRecord.start_date), col(CalendarOverrideRecord.id))
    )
    return list((await session.scalars(query)).all())
