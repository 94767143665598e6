"""SOP 10's daily check: run every SIPP backup and sync check and give one verdict.

Reason codes (stable; `Reason.code`):
- `backup_dir_unreadable` — the backup folder is absent or unreadable (disk not mounted).
- `backup_missing` — no backup named for the check date or the day before.
- `backup_stale` — the backup file was last written more than `max_age_hours` ago.
- `backup_too_small` — under `min_size_bytes`.
- `backup_shrunk` — smaller than (1 - `max_drop_ratio`) x the median of the previous
  `history` backups of the same kind.
- `archive_corrupt` — the zip/7z/gzip cannot be opened, a member fails its CRC, or the
  compressed stream is truncated.
- `archive_unsupported` — the archive uses encryption or a compression method Alur
  cannot read (e.g. Deflate64), so its integrity is unknown.
- `dump_missing` — the archive holds no `.sql` or `.sql.gz` dump.
- `dump_incomplete` — a dump does not end with mysqldump's `-- Dump completed` line.
- `log_missing` — `sync_log` is configured but cannot be read.
- `log_no_success` — no success line on the check date (satker timezone).
- `log_failure_after_success` — a failure line follows the last success.
- `sync_lagging` — the synchronised table's newest timestamp is more than
  `max_lag_minutes` behind the court's own table (or the synchronised table is empty).
- `probe_failed` — the SIPP database could not be reached or read in time.

Checks that are not configured (`sync_log`, `database`) are skipped and recorded as
`null` in the evidence, so a verdict shows what it did not look at.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.core.sipp.checks import check_backup
from services.core.sipp.config import SippCheckConfig
from services.core.sipp.probe import probe_freshness
from services.core.sipp.reasons import Findings, Reason, ReasonCode
from services.core.sipp.synclog import check_sync_log

__all__ = ["BackupVerdict", "Reason", "ReasonCode", "verify_backup"]


class BackupVerdict(BaseModel):
    """`ok` when no check found a reason; `evidence` is JSON-ready."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    reasons: list[Reason]
    evidence: dict[str, Any] = Field(default_factory=dict)


async def _skipped() -> None:
    return None


async def verify_backup(
    config: SippCheckConfig, *, satker: str, day: date, now: datetime
) -> BackupVerdict:
    """Check `satker`'s backup and sync for `day` as of `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # The file checks block (gigabytes of decompression); threads keep the loop free and
    # let them overlap with the database probe.
    backup, log, probe = await asyncio.gather(
        asyncio.to_thread(check_backup, config, day, now),
        asyncio.to_thread(check_sync_log, config, day, now) if config.sync_log else _skipped(),
        probe_freshness(config.database) if config.database else _skipped(),
    )
    parts: list[tuple[str, Findings | None]] = [
        ("backup", backup),
        ("sync_log", log),
        ("probe", probe),
    ]
    reasons = [reason for _, found in parts if found is not None for reason in found.reasons]
    evidence: dict[str, Any] = {
        "satker": satker,
        "satker_code": config.satker_code,
        "day": day.isoformat(),
        "checked_at": now.isoformat(timespec="seconds"),
    }
    evidence.update({name: found.evidence if found else None for name, found in parts})
    return BackupVerdict(ok=not reasons, reasons=reasons, evidence=evidence)
