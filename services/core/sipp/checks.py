"""The backup file itself: present for the day, fresh, of a sane size, and readable.

The expected backup is named for the check date or the day before (a nightly job started
before midnight names its file for the evening's date); the newest such file wins, by
name date then modification time. Its size is compared with the previous `history`
backups of the same kind, one per date: a `.sql` and a `.zip` are not comparable.
"""

from __future__ import annotations

import os
import re
import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from services.core.sipp.archive import check_archive
from services.core.sipp.config import SippCheckConfig
from services.core.sipp.reasons import Findings, ReasonCode

# `sql.gz` precedes `sql` so that the alternation takes the longer extension.
BACKUP_KINDS = ("sql.gz", "zip", "7z", "sql")
_PLACEHOLDER = re.compile(r"(\{SATKER\}|\{YYYY\}|\{MM\}|\{DD\})")


@dataclass(frozen=True)
class BackupFile:
    path: Path
    name_date: date
    kind: str
    size: int
    mtime: datetime

    def describe(self, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "path": str(self.path),
            "kind": self.kind,
            "name_date": self.name_date.isoformat(),
            "size_bytes": self.size,
            "mtime": self.mtime.astimezone(zone).isoformat(timespec="seconds"),
            "age_hours": round((now - self.mtime).total_seconds() / 3600, 2),
        }


def backup_name_regex(pattern: str, satker_code: str) -> re.Pattern[str]:
    """The regex a backup's whole file name must match; groups year, month, day, kind."""
    groups = {
        "{SATKER}": re.escape(satker_code),
        "{YYYY}": r"(?P<year>\d{4})",
        "{MM}": r"(?P<month>\d{2})",
        "{DD}": r"(?P<day>\d{2})",
    }
    body = "".join(groups.get(part, re.escape(part)) for part in _PLACEHOLDER.split(pattern))
    kinds = "|".join(re.escape(kind) for kind in BACKUP_KINDS)
    return re.compile(rf"{body}\.(?P<kind>{kinds})", re.IGNORECASE)


def backup_name(pattern: str, satker_code: str, day: date) -> str:
    """The stem a backup for `day` should have, for messages."""
    return (
        pattern.replace("{SATKER}", satker_code)
        .replace("{YYYY}", f"{day:%Y}")
        .replace("{MM}", f"{day:%m}")
        .replace("{DD}", f"{day:%d}")
    )


def list_backups(directory: Path, name: re.Pattern[str]) -> list[BackupFile]:
    """Every file in `directory` (not below it) whose name matches; raises OSError."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            match = name.fullmatch(entry.name)
            if match is None or not entry.is_file():
                continue
            try:
                name_date = date(int(match["year"]), int(match["month"]), int(match["day"]))
            except ValueError:
                continue  # SIPP-TAIS-2026-02-30: not a date, so not a backup of any day
            stat = entry.stat()
            found.append(
                BackupFile(
                    path=Path(entry.path),
                    name_date=name_date,
                    kind=match["kind"].lower(),
                    size=stat.st_size,
                    mtime=datetime.fromtimestamp(stat.st_mtime, UTC),
                )
            )
    return found


def _newest_first(backup: BackupFile) -> tuple[date, datetime]:
    return backup.name_date, backup.mtime


def select_backup(backups: list[BackupFile], day: date) -> BackupFile | None:
    expected = {day, day - timedelta(days=1)}
    candidates = [backup for backup in backups if backup.name_date in expected]
    return max(candidates, key=_newest_first, default=None)


def previous_backups(backups: list[BackupFile], newest: BackupFile, count: int) -> list[BackupFile]:
    """Up to `count` earlier backups of the same kind, newest first, one per name date."""
    per_date: dict[date, BackupFile] = {}
    for backup in sorted(backups, key=_newest_first):
        if backup.kind == newest.kind and backup.name_date < newest.name_date:
            per_date[backup.name_date] = backup
    return sorted(per_date.values(), key=_newest_first, reverse=True)[:count]


def human_size(size: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def check_backup(config: SippCheckConfig, day: date, now: datetime) -> Findings:
    """Presence, freshness, size and archive integrity of the day's backup. Blocking I/O."""
    zone = ZoneInfo(config.timezone)
    directory = config.backup_dir
    stem = backup_name(config.file_pattern, config.satker_code, day)
    findings = Findings(evidence={"backup_dir": str(directory), "expected_name": stem})
    try:
        backups = list_backups(
            directory, backup_name_regex(config.file_pattern, config.satker_code)
        )
    except OSError as error:
        findings.fail(
            ReasonCode.BACKUP_DIR_UNREADABLE,
            f"the backup folder {directory} cannot be read ({error.strerror or error}) — "
            "check that the backup disk is connected and mounted",
        )
        return findings
    backup = select_backup(backups, day)
    if backup is None:
        _missing(findings, backups, config, day)
        return findings
    findings.evidence["file"] = backup.describe(zone, now)
    _check_fresh(findings, backup, config, now, zone)
    _check_size(findings, backup, previous_backups(backups, backup, config.history), config)
    archive = check_archive(backup.path, backup.kind)
    findings.evidence["archive"] = archive.evidence
    findings.reasons.extend(archive.reasons)
    return findings


def _missing(
    findings: Findings, backups: list[BackupFile], config: SippCheckConfig, day: date
) -> None:
    stem = backup_name(config.file_pattern, config.satker_code, day)
    extensions = "|".join(BACKUP_KINDS)
    newest = max(backups, key=_newest_first, default=None)
    if newest is None:
        seen = f"no file there matches {stem}.({extensions}) for any date"
    else:
        findings.evidence["newest_found"] = newest.path.name
        seen = f"the newest backup there is {newest.path.name}"
    findings.fail(
        ReasonCode.BACKUP_MISSING,
        f"no backup {stem}.({extensions}) (or one for the day before) in "
        f"{config.backup_dir}; {seen} — run the backup now and check its name",
    )


def _check_fresh(
    findings: Findings, backup: BackupFile, config: SippCheckConfig, now: datetime, zone: ZoneInfo
) -> None:
    age_hours = (now - backup.mtime).total_seconds() / 3600
    if age_hours <= config.max_age_hours:
        return
    written = backup.mtime.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    findings.fail(
        ReasonCode.BACKUP_STALE,
        f"{backup.path.name} was last written {age_hours:.1f} hours ago ({written}), more "
        f"than the {config.max_age_hours:g} hours allowed — last night's backup did not "
        "write this file; run the backup now",
    )


def _check_size(
    findings: Findings, backup: BackupFile, history: list[BackupFile], config: SippCheckConfig
) -> None:
    name = backup.path.name
    if backup.size < config.min_size_bytes:
        findings.fail(
            ReasonCode.BACKUP_TOO_SMALL,
            f"{name} is only {backup.size} bytes, under the {config.min_size_bytes} bytes "
            "minimum — the backup is empty or failed; re-run it",
        )
    if not history:
        findings.evidence["history"] = {"files": []}
        return
    median = statistics.median(previous.size for previous in history)
    threshold = (1 - config.max_drop_ratio) * median
    findings.evidence["history"] = {
        "files": [previous.path.name for previous in history],
        "median_size_bytes": median,
        "threshold_bytes": round(threshold),
    }
    if backup.size < threshold:
        drop = 100 * (1 - backup.size / median)
        findings.fail(
            ReasonCode.BACKUP_SHRUNK,
            f"{name} is {human_size(backup.size)}, {drop:.0f}% smaller than the median "
            f"{human_size(median)} of the previous {len(history)} backup(s) — check that the "
            "whole database was dumped and re-run the backup",
        )
