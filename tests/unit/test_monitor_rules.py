"""SOP 05's monitoring rules as tables: streaks, transitions, maintenance, expiry reminders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.core.monitors.probe import HttpResult, MonitorSpec, content_stale
from services.core.monitors.rdap import registrable_domain
from services.core.monitors.rules import (
    MaintenanceWindow,
    MonitorState,
    OneOffWindow,
    Transition,
    WeeklyWindow,
    all_down,
    in_maintenance,
    next_state,
)
from services.core.monitors.tls import expiry_alerts

WIB = ZoneInfo("Asia/Jakarta")
NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 08:00 WIB


def run(
    checks: str,
    *,
    retries: int,
    confirmations: int,
    start: MonitorState | None = None,
    maintenance: str = "",
) -> list[tuple[str, Transition | None]]:
    """Feed checks ("+" up, "-" down; "m" at a position in `maintenance` = in a window)."""
    state = start or MonitorState()
    seen: list[tuple[str, Transition | None]] = []
    for index, check in enumerate(checks):
        state, transition = next_state(
            state,
            check == "+",
            retries=retries,
            confirmations=confirmations,
            in_maintenance=maintenance[index : index + 1] == "m",
        )
        seen.append((state.status, transition))
    return seen


UP = MonitorState(status="up", consecutive_successes=5)
DOWN = MonitorState(status="down", consecutive_failures=5)


@pytest.mark.parametrize(
    ("start", "checks", "retries", "confirmations", "expected"),
    [
        # retries=2: the third failure in a row is the outage, reported once.
        (UP, "----", 2, 1, [("up", None), ("up", None), ("down", "down"), ("down", None)]),
        (UP, "-", 0, 1, [("down", "down")]),
        # A success in between resets the failure streak.
        (UP, "--+--", 2, 1, [("up", None)] * 5),
        # confirmations=2: one good answer is not a recovery yet.
        (DOWN, "+-++", 0, 2, [("down", None), ("down", None), ("down", None), ("up", "up")]),
        (DOWN, "+", 0, 0, [("up", "up")]),
        # Flapping with retries and confirmations: no incident opened, none closed.
        (UP, "-+-+-+-+", 1, 2, [("up", None)] * 8),
        (DOWN, "+-+-+-+-", 1, 2, [("down", None)] * 8),
        # A new monitor: coming up is not a recovery, a dead site is an outage.
        (MonitorState(), "++", 0, 2, [("unknown", None), ("up", None)]),
        (MonitorState(), "--", 1, 1, [("unknown", None), ("down", "down")]),
    ],
)
def test_streaks_and_transitions(
    start: MonitorState,
    checks: str,
    retries: int,
    confirmations: int,
    expected: list[tuple[str, Transition | None]],
) -> None:
    assert run(checks, retries=retries, confirmations=confirmations, start=start) == expected


@pytest.mark.parametrize(
    ("start", "checks", "maintenance", "expected"),
    [
        # Failures inside the window count for nothing, and do not carry over.
        (
            UP,
            "----",
            "mm..",
            [("maintenance", None), ("maintenance", None), ("unknown", None), ("down", "down")],
        ),
        # Down before the window, up after it: nothing to announce as a recovery.
        (DOWN, "-++", "m..", [("maintenance", None), ("unknown", None), ("up", None)]),
    ],
)
def test_maintenance_suspends_counting(
    start: MonitorState, checks: str, maintenance: str, expected: list[tuple[str, str | None]]
) -> None:
    assert run(checks, retries=1, confirmations=2, start=start, maintenance=maintenance) == expected


def test_streak_counts_are_kept() -> None:
    state, _ = next_state(UP, False, retries=3, confirmations=1, in_maintenance=False)
    assert state == MonitorState(status="up", consecutive_failures=1, consecutive_successes=0)


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        next_state(UP, True, retries=-1, confirmations=1, in_maintenance=False)


SATURDAY_NIGHT = WeeklyWindow(weekday=5, start=time(22, 0), end=time(2, 0))  # WIB


@pytest.mark.parametrize(
    ("windows", "now", "expected"),
    [
        ([], NOW, False),
        ([OneOffWindow(NOW, NOW + timedelta(hours=1))], NOW, True),
        ([OneOffWindow(NOW - timedelta(hours=1), NOW)], NOW, False),  # the end is excluded
        # Monday 08:00-09:00 in Jakarta is 01:00-02:00 UTC.
        ([WeeklyWindow(0, time(8, 0), time(9, 0))], NOW, True),
        ([WeeklyWindow(0, time(8, 0), time(9, 0))], NOW + timedelta(hours=1), False),
        ([WeeklyWindow(0, time(8, 0), time(9, 0))], NOW - timedelta(days=1), False),
        # The same local hours in Jayapura (UTC+9) are two hours earlier in UTC.
        ([WeeklyWindow(0, time(8, 0), time(9, 0), "Asia/Jayapura")], NOW, False),
        (
            [WeeklyWindow(0, time(8, 0), time(9, 0), "Asia/Jayapura")],
            NOW - timedelta(hours=2),
            True,
        ),
        # Past midnight: Saturday 23:00 and Sunday 01:30 WIB are in, Sunday 02:00 is not.
        ([SATURDAY_NIGHT], datetime(2026, 11, 28, 23, 0, tzinfo=WIB), True),
        ([SATURDAY_NIGHT], datetime(2026, 11, 29, 1, 30, tzinfo=WIB), True),
        ([SATURDAY_NIGHT], datetime(2026, 11, 29, 2, 0, tzinfo=WIB), False),
        ([SATURDAY_NIGHT], datetime(2026, 11, 28, 1, 30, tzinfo=WIB), False),
        (
            [WeeklyWindow(3, time(0, 0), time(1, 0)), OneOffWindow(NOW, NOW + timedelta(1))],
            NOW,
            True,
        ),
    ],
)
def test_in_maintenance(windows: list[MaintenanceWindow], now: datetime, expected: bool) -> None:
    assert in_maintenance(windows, now) is expected


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: OneOffWindow(NOW, NOW), "end after"),
        (lambda: OneOffWindow(NOW.replace(tzinfo=None), NOW), "timezone"),
        (lambda: WeeklyWindow(7, time(1), time(2)), "weekday"),
        (lambda: WeeklyWindow(1, time(1), time(1)), "start and end"),
    ],
)
def test_bad_windows_are_refused(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        in_maintenance([WeeklyWindow(0, time(8), time(9))], NOW.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("sites", "reference", "expected"),
    [
        ([False, False], [False], True),
        ([False, True], [False], False),
        ([False, False], [True], False),  # the court's sites are down, not its connection
        ([False], [], False),  # no reference, no conclusion
        ([], [False], False),
    ],
)
def test_all_down(sites: list[bool], reference: list[bool], expected: bool) -> None:
    assert all_down(sites, reference=reference) is expected


@pytest.mark.parametrize(
    ("days_left", "already_alerted", "expected"),
    [
        (30, None, None),
        (21, None, 21),
        (20.5, None, 21),
        (20.5, 21, None),
        (10, None, 14),  # 21 is passed over: one reminder, the most urgent
        (10, 21, 14),
        (10, 14, None),
        (3, 14, 7),
        (-2, None, 7),  # expired
        (-2, 7, None),
    ],
)
def test_expiry_alerts(days_left: float, already_alerted: int | None, expected: int | None) -> None:
    not_after = NOW + timedelta(days=days_left)
    assert expiry_alerts(not_after, NOW, already_alerted=already_alerted) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pn-tais.go.id", "pn-tais.go.id"),
        ("www.pn-tais.go.id", "pn-tais.go.id"),
        ("SIPP.PN-Tais.Go.Id.", "pn-tais.go.id"),
        ("a.b.ponpes.id", "b.ponpes.id"),
        ("www.pandi.id", "pandi.id"),
        ("www.mahkamahagung.go.id", "mahkamahagung.go.id"),
        ("www.example.com", "example.com"),
    ],
)
def test_registrable_domain(name: str, expected: str) -> None:
    assert registrable_domain(name) == expected


@pytest.mark.parametrize(
    ("freshness_days", "age", "expected"),
    [
        (None, timedelta(days=400), False),
        (180, timedelta(days=200), True),
        (180, timedelta(days=179), False),
        (180, None, False),  # unknown is not stale
    ],
)
def test_content_stale(freshness_days: int | None, age: timedelta | None, expected: bool) -> None:
    spec = MonitorSpec(url="http://127.0.0.1/", freshness_days=freshness_days)
    updated = None if age is None else NOW - age
    result = HttpResult(checked_at=NOW, up=True, content_updated_at=updated)
    assert content_stale(result, spec, NOW) is expected
