"""The sync job's log: a success on the check date, and no failure since the last success.

Lines are read as a stream (logs grow for years). Each line's timestamp comes from
`log_timestamp_format`; a line without one (a stack trace, a wrapped message) belongs to
the last timestamp above it, and lines before the first timestamp are ignored. Only lines
up to the end of the check date in the satker's timezone, and not after `now`, count, so
re-checking an earlier date judges that date. A line matching both patterns is a failure:
"sinkronisasi selesai dengan error" is not a success.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.core.sipp.config import SippCheckConfig
from services.core.sipp.reasons import Findings, ReasonCode, quote


@dataclass(frozen=True)
class LogLine:
    at: datetime
    text: str

    def describe(self) -> dict[str, str]:
        return {"at": self.at.isoformat(timespec="seconds"), "line": quote(self.text)}

    def when(self) -> str:
        return self.at.strftime("%Y-%m-%d %H:%M:%S %Z")


class _Timestamps:
    def __init__(self, config: SippCheckConfig) -> None:
        self.pattern = re.compile(config.log_timestamp_format)
        self.strptime = config.log_timestamp_strptime
        self.log_zone = ZoneInfo(config.log_timezone)
        self.local_zone = ZoneInfo(config.timezone)

    def find(self, line: str) -> datetime | None:
        match = self.pattern.search(line)
        if match is None:
            return None
        text = match["ts"]
        try:
            value = (
                datetime.strptime(text, self.strptime)
                if self.strptime
                else datetime.fromisoformat(text)
            )
        except ValueError:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.log_zone)
        return value.astimezone(self.local_zone)


def check_sync_log(config: SippCheckConfig, day: date, now: datetime) -> Findings:
    """Judge `config.sync_log` for `day`. Blocking I/O."""
    if config.sync_log is None:
        raise ValueError("no sync log configured")
    path = config.sync_log
    stamps = _Timestamps(config)
    end = min(now, datetime.combine(day + timedelta(days=1), time(), stamps.local_zone))
    findings = Findings(
        evidence={"file": str(path), "window_end": end.isoformat(timespec="seconds")}
    )
    success = re.compile(config.success_pattern)
    failure = re.compile(config.failure_pattern)
    current: datetime | None = None
    last_success: LogLine | None = None
    first_failure_after: LogLine | None = None
    last_failure: LogLine | None = None
    failures_after = 0
    lines = 0
    try:
        with path.open(encoding="utf-8", errors="replace") as log:
            for text in log:
                lines += 1
                current = stamps.find(text) or current
                if current is None or current > end:
                    continue
                if failure.search(text):
                    last_failure = LogLine(current, text)
                    if last_success is not None:
                        failures_after += 1
                        first_failure_after = first_failure_after or last_failure
                elif success.search(text):
                    last_success = LogLine(current, text)
                    first_failure_after, failures_after = None, 0
    except OSError as error:
        findings.fail(
            ReasonCode.LOG_MISSING,
            f"the sync log {path} cannot be read ({error.strerror or error}) — check the log "
            "path in the configuration and that the SIPP sync job still runs",
        )
        return findings
    findings.evidence["lines"] = lines
    if last_success is not None:
        findings.evidence["last_success"] = last_success.describe()
    if last_failure is not None:
        findings.evidence["last_failure"] = last_failure.describe()
    if last_success is None or last_success.at.date() != day:
        _no_success(findings, path.name, day, lines, last_success, last_failure)
    if first_failure_after is not None and last_success is not None:
        findings.evidence["failure_after_success"] = {
            **first_failure_after.describe(),
            "count": failures_after,
        }
        findings.fail(
            ReasonCode.LOG_FAILURE_AFTER_SUCCESS,
            f"{path.name}: {failures_after} failure line(s) follow the last success "
            f"({last_success.when()}), the first at {first_failure_after.when()}: "
            f"{quote(first_failure_after.text)!r} — the synchronisation failed since; fix "
            "the error and run it again",
        )
    return findings


def _no_success(
    findings: Findings,
    name: str,
    day: date,
    lines: int,
    last_success: LogLine | None,
    last_failure: LogLine | None,
) -> None:
    before = f"the last one was at {last_success.when()}" if last_success else "nor any before"
    failed = (
        f"; the last failure line, at {last_failure.when()}, reads {quote(last_failure.text)!r}"
        if last_failure
        else ""
    )
    findings.fail(
        ReasonCode.LOG_NO_SUCCESS,
        f"{name} has no success line on {day.isoformat()} among its {lines} line(s) "
        f"({before}){failed} — the synchronisation did not run or did not finish; run it "
        "and check the SIPP sync settings",
    )
