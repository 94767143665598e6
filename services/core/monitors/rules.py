"""When a website counts as down or up again, and when nobody should be told (pure).

One failed check is not an outage: `retries` more failures in a row are tolerated before
the monitor goes DOWN (Uptime Kuma's meaning: `retries=2` -> the third failure in a row).
Recovery needs `confirmations` successes in a row (0 and 1 both mean the first success),
so a flapping site neither opens nor closes an incident on every check.

Transitions are what the caller acts on: "down" opens SOP 05's incident, "up" closes it.
"down" fires on a confirmed failure from any other status (a new monitor on a dead site
is an outage too); "up" fires only when leaving "down" — a site coming up for the first
time or after maintenance has nothing to recover from. During maintenance checks count
for nothing (failures are expected) and the monitor restarts from scratch afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Status = Literal["unknown", "up", "down", "maintenance"]
Transition = Literal["down", "up"]


@dataclass(frozen=True)
class MonitorState:
    status: Status = "unknown"
    consecutive_failures: int = 0
    consecutive_successes: int = 0


def next_state(
    state: MonitorState,
    check_up: bool,
    *,
    retries: int,
    confirmations: int,
    in_maintenance: bool,
) -> tuple[MonitorState, Transition | None]:
    """The state after one check, and the confirmed change it makes, if any."""
    if retries < 0 or confirmations < 0:
        raise ValueError("retries and confirmations cannot be negative")
    if in_maintenance:
        return MonitorState(status="maintenance"), None
    # Leaving maintenance: what the site did before the window says nothing now.
    current = MonitorState() if state.status == "maintenance" else state

    if check_up:
        streak = replace(
            current, consecutive_failures=0, consecutive_successes=current.consecutive_successes + 1
        )
        if current.status == "up" or streak.consecutive_successes < max(confirmations, 1):
            return streak, None
        transition: Transition | None = "up" if current.status == "down" else None
        return replace(streak, status="up"), transition

    streak = replace(
        current, consecutive_successes=0, consecutive_failures=current.consecutive_failures + 1
    )
    if current.status == "down" or streak.consecutive_failures <= retries:
        return streak, None
    return replace(streak, status="down"), "down"


@dataclass(frozen=True)
class OneOffWindow:
    """Maintenance from `starts_at` (included) to `ends_at` (excluded); aware datetimes."""

    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("maintenance window times need a timezone")
        if self.ends_at <= self.starts_at:
            raise ValueError("a maintenance window must end after it starts")

    def covers(self, now: datetime) -> bool:
        return self.starts_at <= _aware(now) < self.ends_at


@dataclass(frozen=True)
class WeeklyWindow:
    """Maintenance every `weekday` (0 = Monday) from `start` to `end`, local to `timezone`.

    An `end` before `start` runs past midnight into the next day (Sat 22:00-02:00).
    """

    weekday: int
    start: time
    end: time
    timezone: str = "Asia/Jakarta"

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError("weekday runs from 0 (Monday) to 6 (Sunday)")
        if self.start == self.end:
            raise ValueError("a weekly maintenance window cannot start and end together")
        ZoneInfo(self.timezone)  # an unknown zone fails here, not at the first check

    def covers(self, now: datetime) -> bool:
        local = _aware(now).astimezone(ZoneInfo(self.timezone))
        clock = local.time()
        if self.start < self.end:
            return local.weekday() == self.weekday and self.start <= clock < self.end
        if local.weekday() == self.weekday:
            return clock >= self.start
        # The part after midnight belongs to the window opened the day before.
        yesterday = (local - timedelta(days=1)).weekday()
        return yesterday == self.weekday and clock < self.end


MaintenanceWindow = OneOffWindow | WeeklyWindow


def in_maintenance(windows: Iterable[MaintenanceWindow], now: datetime) -> bool:
    return any(window.covers(now) for window in windows)


def all_down(sites: Iterable[bool], *, reference: Iterable[bool]) -> bool:
    """True when every monitored site AND every reference target failed the same round.

    The reference is a target outside the court (a public site): if it fails with all
    the court's sites, the court's own connection is down, not its websites. Without a
    reference, or without any site, nothing can be concluded. Leave out monitors that
    are in maintenance.
    """
    site_results = list(sites)
    reference_results = list(reference)
    if not site_results or not reference_results:
        return False
    return not any(site_results) and not any(reference_results)


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("`now` needs a timezone")
    return now
