"""ISO 8601 durations as the catalog uses them (`PT45M`, `P2D`, `P1DT4H`).

A duration is kept as written (days and seconds apart) because a *day* in a time
standard is a working day, not 24 hours: the calendar decides what it means.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_ISO_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


@dataclass(frozen=True, order=True)
class Duration:
    """A span of days plus a span of seconds, compared days first."""

    days: int = 0
    seconds: int = 0

    @classmethod
    # Parsed again for every deadline and every sweep; the catalog holds a few dozen texts.
    @functools.lru_cache(maxsize=1024)
    def parse(cls, text: str) -> Duration:
        match = _ISO_DURATION.match(text)
        if match is None:
            raise ValueError(f"not an ISO 8601 duration: {text!r}")
        parts = {key: int(value) for key, value in match.groupdict().items() if value}
        days = parts.get("weeks", 0) * 7 + parts.get("days", 0)
        seconds = parts.get("hours", 0) * 3600 + parts.get("minutes", 0) * 60
        return cls(days=days, seconds=seconds + parts.get("seconds", 0))

    def isoformat(self) -> str:
        if not self.days and not self.seconds:
            return "PT0S"
        text = "P"
        if self.days:
            text += f"{self.days}D"
        if self.seconds:
            hours, rest = divmod(self.seconds, 3600)
            minutes, seconds = divmod(rest, 60)
            text += "T"
            text += f"{hours}H" if hours else ""
            text += f"{minutes}M" if minutes else ""
            text += f"{seconds}S" if seconds else ""
        return text


def is_iso_duration(text: str) -> bool:
    return _ISO_DURATION.match(text) is not None
