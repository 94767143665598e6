"""What the SIPP backup check looks at, for one satker (stored later as JSON per satker).

Backup names follow the Supreme Court's guide, `SIPP-[SINGKATAN_SATKER]-[TAHUN]-[BULAN]-
[TANGGAL]`, written here as `file_pattern` with the placeholders `{SATKER}` (replaced by
`satker_code`), `{YYYY}`, `{MM}` and `{DD}`; one of the extensions `.zip`, `.7z`, `.sql`,
`.sql.gz` follows it. Matching ignores case, because copies made on Windows to an exFAT
disk often come back as `.ZIP`.

Sync log timestamps: `log_timestamp_format` is a regular expression whose named group
`ts` captures the timestamp of a line (searched anywhere in the line). The text is parsed
with `log_timestamp_strptime` when set (e.g. `%d/%m/%Y %H:%M:%S`), otherwise as ISO 8601
(`2026-11-23 17:05:00`, the CodeIgniter log format SIPP uses). A timestamp without an
offset is read in `log_timezone` (SIPP servers often log in UTC), then converted to the
satker's `timezone` to decide which day a line belongs to.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Self

import sqlalchemy as sa
from pydantic import ConfigDict, Field, field_validator, model_validator

from services.core.validation import INT64_MAX, StrictBody, TimeZoneName

DEFAULT_FILE_PATTERN = "SIPP-{SATKER}-{YYYY}-{MM}-{DD}"
DEFAULT_SUCCESS_PATTERN = r"(?i)sinkronisasi (berhasil|selesai|sukses)|sync (success|completed)"
DEFAULT_FAILURE_PATTERN = r"(?i)error|gagal|failed|exception"
DEFAULT_TIMESTAMP_FORMAT = r"(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})"
DATE_PLACEHOLDERS = ("{YYYY}", "{MM}", "{DD}")
MYSQL_SCHEMES = frozenset({"mysql", "mariadb", "mysql+aiomysql", "mariadb+aiomysql"})
# Table and column names are interpolated into SQL (they cannot be bound parameters),
# so only plain identifiers, optionally qualified by a schema, are accepted.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")


def _valid_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"not a valid regular expression: {error}") from error
    return value


class SippDatabase(StrictBody):
    """A read-only account on the SIPP MariaDB/MySQL server and the tables whose newest
    timestamps show whether the synchronisation keeps up with the data."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(description="`mysql://user:password@host:3306/sipp`, a read-only account.")
    internal_table: str = Field(description="Table written by the court's own SIPP, e.g. perkara.")
    internal_column: str = Field(description="Its newest-timestamp column.")
    synced_table: str = Field(description="Table that records what was synchronised.")
    synced_column: str = Field(description="Its newest-timestamp column.")
    max_lag_minutes: int = Field(default=120, gt=0, le=525600)

    @field_validator("url")
    @classmethod
    def _mysql_url(cls, value: str) -> str:
        try:
            url = sa.make_url(value)
        except sa.exc.ArgumentError as error:
            raise ValueError(f"not a database URL: {error}") from error
        if url.drivername not in MYSQL_SCHEMES:
            raise ValueError(f"expected a mysql:// or mariadb:// URL, got {url.drivername}://")
        if not url.database:
            raise ValueError("the URL names no database (…:3306/sipp)")
        return value

    @field_validator("internal_table", "internal_column", "synced_table", "synced_column")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if _IDENTIFIER.fullmatch(value) is None:
            raise ValueError(f"{value!r} is not a plain SQL identifier")
        return value


class SippCheckConfig(StrictBody):
    model_config = ConfigDict(frozen=True)

    satker_code: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="The satker abbreviation in backup names, e.g. TAIS or PN-TAIS.",
    )
    backup_dir: Path
    file_pattern: str = DEFAULT_FILE_PATTERN
    max_age_hours: float = Field(default=30, gt=0, le=8760)
    min_size_bytes: int = Field(default=1024, ge=0, le=INT64_MAX)
    max_drop_ratio: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="The newest backup fails when smaller than (1 - ratio) x the median "
        "size of the previous `history` backups of the same kind.",
    )
    history: int = Field(default=7, ge=1, le=366)
    sync_log: Path | None = None
    success_pattern: str = DEFAULT_SUCCESS_PATTERN
    failure_pattern: str = DEFAULT_FAILURE_PATTERN
    log_timezone: TimeZoneName = "UTC"
    log_timestamp_format: str = DEFAULT_TIMESTAMP_FORMAT
    log_timestamp_strptime: str | None = None
    timezone: TimeZoneName = Field(default="Asia/Jakarta", description="The satker's own timezone.")
    database: SippDatabase | None = None

    _regex = field_validator("success_pattern", "failure_pattern", "log_timestamp_format")(
        _valid_regex
    )

    @field_validator("file_pattern")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        wrong = [name for name in (*DATE_PLACEHOLDERS, "{SATKER}") if value.count(name) != 1]
        if wrong:
            raise ValueError(f"the pattern needs each of {', '.join(wrong)} exactly once")
        return value

    @model_validator(mode="after")
    def _timestamp_group(self) -> Self:
        if "ts" not in re.compile(self.log_timestamp_format).groupindex:
            raise ValueError("log_timestamp_format needs a named group (?P<ts>…)")
        return self
