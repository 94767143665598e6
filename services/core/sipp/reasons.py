"""The vocabulary every SIPP check speaks: stable reason codes and what a check found."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

# Evidence lines are quoted from logs and dumps; a runaway line must not bloat a verdict.
MAX_QUOTE = 300


class ReasonCode(StrEnum):
    """Stable codes (contract): clients and the SOP 10 instance switch on them."""

    BACKUP_DIR_UNREADABLE = "backup_dir_unreadable"
    BACKUP_MISSING = "backup_missing"
    BACKUP_STALE = "backup_stale"
    BACKUP_TOO_SMALL = "backup_too_small"
    BACKUP_SHRUNK = "backup_shrunk"
    ARCHIVE_CORRUPT = "archive_corrupt"
    ARCHIVE_UNSUPPORTED = "archive_unsupported"
    DUMP_MISSING = "dump_missing"
    DUMP_INCOMPLETE = "dump_incomplete"
    LOG_MISSING = "log_missing"
    LOG_NO_SUCCESS = "log_no_success"
    LOG_FAILURE_AFTER_SUCCESS = "log_failure_after_success"
    SYNC_LAGGING = "sync_lagging"
    PROBE_FAILED = "probe_failed"


class Reason(BaseModel):
    """Why a check failed, in words staff can act on."""

    model_config = ConfigDict(frozen=True)

    code: ReasonCode
    message: str


@dataclass
class Findings:
    """What one check concluded (`reasons`, empty when fine) and what it looked at."""

    reasons: list[Reason] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def fail(self, code: ReasonCode, message: str) -> None:
        self.reasons.append(Reason(code=code, message=message))


def quote(text: str) -> str:
    text = text.rstrip("\r\n")
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 1] + "…"
