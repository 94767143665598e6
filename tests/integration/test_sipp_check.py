"""SOP 10's SIPP check against real backup files, real logs and a real MariaDB.

The MariaDB server comes from `ALUR_TEST_MYSQL_URL` (default: root on 127.0.0.1:3306);
the probe reads through a SELECT-only account created for the run, as in production.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import random
import socket
import struct
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import py7zr
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner, Result

from services.cli.main import app as cli
from services.core.sipp.config import SippCheckConfig, SippDatabase
from services.core.sipp.probe import CONNECT_TIMEOUT_SECONDS, engine_url
from services.core.sipp.verify import BackupVerdict, verify_backup

MYSQL_URL = os.environ.get("ALUR_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")
WIB = ZoneInfo("Asia/Jakarta")
DAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=WIB)
BACKUP_WRITTEN = datetime(2026, 11, 23, 2, 0, tzinfo=WIB)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def dump(rows: int = 400, *, complete: bool = True, seed: int = 0) -> bytes:
    """A mysqldump-shaped dump; random values keep it from compressing to nothing."""
    rng = random.Random(seed)
    values = ",\n".join(
        f"({n},'{rng.getrandbits(64):016x}/Pdt.G/2026/PN Tais','2026-11-{1 + n % 22:02d}')"
        for n in range(rows)
    )
    text = (
        "-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)\n"
        "--\n-- Host: localhost    Database: sipp\n"
        "CREATE TABLE `perkara` (`perkara_id` int, `nomor_perkara` varchar(64), "
        "`diinput_tanggal` date);\n"
        f"INSERT INTO `perkara` VALUES {values};\n"
        "/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n\n"
    )
    if complete:
        text += "-- Dump completed on 2026-11-23  2:00:01\n"
    return text.encode()


def written(path: Path, when: datetime) -> Path:
    stamp = when.timestamp()
    os.utime(path, (stamp, stamp))
    return path


def make_zip(
    path: Path,
    payload: bytes,
    *,
    member: str = "sipp.sql",
    compression: int = zipfile.ZIP_DEFLATED,
    when: datetime = BACKUP_WRITTEN,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("sipp/application/config/config.php", b"<?php $config = [];\n" * 50)
        archive.writestr(member, payload)
    return written(path, when)


def make_file(path: Path, payload: bytes, when: datetime = BACKUP_WRITTEN) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return written(path, when)


def flip_member_bytes(path: Path, member: str) -> None:
    """Damage a member's data in place, leaving every header intact."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    with path.open("r+b") as handle:
        handle.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", handle.read(4))
        middle = info.header_offset + 30 + name_length + extra_length + info.compress_size // 2
        handle.seek(middle)
        original = handle.read(16)
        handle.seek(middle)
        handle.write(bytes(byte ^ 0xFF for byte in original))


def config(root: Path, **fields: Any) -> SippCheckConfig:
    return SippCheckConfig(satker_code="TAIS", backup_dir=root / "backups", **fields)


async def verify(cfg: SippCheckConfig, now: datetime = NOW) -> BackupVerdict:
    return await verify_backup(cfg, satker="pn-tais", day=DAY, now=now)


def codes(verdict: BackupVerdict) -> list[str]:
    return [reason.code for reason in verdict.reasons]


@pytest.fixture
def good_backup(tmp_path: Path) -> Path:
    return make_zip(tmp_path / "backups" / "SIPP-TAIS-2026-11-23.zip", dump())


async def test_a_complete_zip_backup_is_ok(good_backup: Path, tmp_path: Path) -> None:
    verdict = await verify(config(tmp_path))

    assert verdict.ok, verdict.reasons
    backup = verdict.evidence["backup"]
    assert backup["file"]["file"] == "SIPP-TAIS-2026-11-23.zip"
    assert backup["file"]["size_bytes"] == await asyncio.to_thread(os.path.getsize, good_backup)
    assert backup["file"]["mtime"] == "2026-11-23T02:00:00+07:00"
    assert backup["archive"]["members"] == 2
    [checked] = backup["archive"]["dumps"]
    assert checked["last_line"] == "-- Dump completed on 2026-11-23  2:00:01"
    assert verdict.evidence["sync_log"] is None
    assert verdict.evidence["probe"] is None


async def test_a_backup_named_for_the_day_before_counts(tmp_path: Path) -> None:
    late_evening = datetime(2026, 11, 22, 23, 40, tzinfo=WIB)
    make_zip(tmp_path / "backups" / "SIPP-TAIS-2026-11-22.ZIP", dump(), when=late_evening)

    verdict = await verify(config(tmp_path))

    assert verdict.ok, verdict.reasons


async def test_a_stale_backup_is_reported(tmp_path: Path) -> None:
    make_zip(tmp_path / "backups" / "SIPP-TAIS-2026-11-23.zip", dump(), when=NOW - timedelta(2))

    verdict = await verify(config(tmp_path))

    assert codes(verdict) == ["backup_stale"]
    assert "48.0 hours ago" in verdict.reasons[0].message


async def test_a_truncated_dump_is_incomplete(tmp_path: Path) -> None:
    whole = dump(complete=True)
    make_zip(tmp_path / "backups" / "SIPP-TAIS-2026-11-23.zip", whole[: len(whole) * 7 // 10])

    verdict = await verify(config(tmp_path))

    assert codes(verdict) == ["dump_incomplete"]
    assert "member sipp.sql does not end with mysqldump's" in verdict.reasons[0].message


async def test_a_member_failing_its_crc_is_corrupt(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "backups" / "SIPP-TAIS-2026-11-23.zip", dump(), compression=zipfile.ZIP_STORED
    )
    flip_member_bytes(path, "sipp.sql")

    verdict = await verify(config(tmp_path))

    assert codes(verdict) == ["archive_corrupt"]
    assert verdict.reasons[0].message == (
        "SIPP-TAIS-2026-11-23.zip: member sipp.sql fails its CRC check — re-run the backup"
    )


async def test_damaged_deflate_data_is_corrupt(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "backups" / "SIPP-TAIS-2026-11-23.zip", dump(rows=3000))
    flip_member_bytes(path, "sipp.sql")

    verdict = await verify(config(tmp_path))

    assert codes(verdict) == ["archive_corrupt"]
    assert "member sipp.sql" in verdict.reasons[0].message


async def test_a_half_copied_zip_is_corrupt(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "backups" / "SIPP-TAIS-2026-11-23.zip", dump(rows=3000))
    payload = path.read_bytes()
    make_file(path, payload[: len(payload) // 2])

    verdict = await verify(config(tmp_path))

    assert codes(verdict) == ["archive_corrupt"]
    assert "cannot be opened as a zip archive" in verdict.reasons[0].message


async def test_a_zip_without_a_dump_is_reported(tmp_path: Path) -> None:
    make_zip(tmp_path / "backups" / "SIPP-TAIS-2026-11-23.zip", dump(), member="notes.txt")

    verdict = await verify(config(tmp_path))

    assert codes(verdict) == ["dump_missing"]


def _history(root: Path, rows: int) -> None:
    for days_back in range(1, 8):
        day = DAY - timedelta(days=days_back)
        when = datetime(day.year, day.month, day.day, 2, 0, tzinfo=WIB)
        make_zip(root / f"SIPP-TAIS-{day}.zip", dump(rows, seed=days_back), when=when)


async def test_a_backup_much_smaller_than_its_history_has_shrunk(tmp_path: Path) -> None:
    _history(tmp_path / "backups", rows=4000)
    make_zip(tmp_path / "backups" / "SIPP-TAIS-2026-11-23.zip", dump(rows=400))

    verdict = await verify(config(tmp_path))

    assert codes(verdict) == ["backup_shrunk"]
    history = verdict.evidence["backup"]["history"]
    assert history["files"][0] == "SIPP-TAIS-2026-11-22.zip"
    assert len(history["files"]) == 7
    assert verdict.evidence["backup"]["file"]["size_bytes"] < history["threshold_bytes"]
    assert "smaller than the median" in verdict.reasons[0].message


async def test_normal_variation_against_history_is_fine(tmp_path: Path) -> None:
    _history(tmp_path / "backups", rows=4000)
    make_zip(tmp_path / "backups" / "SIPP-TAIS-2026-11-23.zip", dump(rows=3000))

    verdict = await verify(config(tmp_path))

    assert verdict.ok, verdict.reasons


async def test_a_tiny_backup_is_too_small(tmp_path: Path) -> None:
    make_file(tmp_path / "backups" / "SIPP-TAIS-2026-11-23.sql", dump(rows=1))

    verdict = await verify(config(tmp_path))

    assert codes(verdict) == ["backup_too_small"]


async def test_a_missing_backup_names_the_newest_one_found(tmp_path: Path) -> None:
    make_zip(tmp_path / "backups" / "SIPP-TAIS-2026-11-20.zip", dump())
    make_zip(tmp_path / "backups" / "SIPP-BENGKULU-2026-11-23.zip", dump())

    verdict = await verify(config(tmp_path))

    assert codes(verdict) == ["backup_missing"]
    assert "the newest backup there is SIPP-TAIS-2026-11-20.zip" in verdict.reasons[0].message


async def test_an_absent_backup_folder_is_reported(tmp_path: Path) -> None:
    verdict = await verify(config(tmp_path))

    assert codes(verdict) == ["backup_dir_unreadable"]


async def test_a_complete_plain_dump_larger_than_the_tail_is_ok(tmp_path: Path) -> None:
    make_file(tmp_path / "backups" / "SIPP-TAIS-2026-11-23.sql", dump(rows=5000))

    verdict = await verify(config(tmp_path))

    assert verdict.ok, verdict.reasons


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("none", []),
        ("truncated file", ["archive_corrupt"]),
        ("truncated dump", ["dump_incomplete"]),
    ],
)
async def test_sql_gz_backups(tmp_path: Path, damage: str, expected: list[str]) -> None:
    whole = dump(rows=3000)
    payload = gzip.compress(whole[: len(whole) // 2] if damage == "truncated dump" else whole)
    if damage == "truncated file":
        payload = payload[: len(payload) * 3 // 4]
    make_file(tmp_path / "backups" / "SIPP-TAIS-2026-11-23.sql.gz", payload)

    verdict = await verify(config(tmp_path))

    assert codes(verdict) == expected
    if damage == "truncated file":
        assert "the file is truncated" in verdict.reasons[0].message


@pytest.mark.parametrize(("damaged", "expected"), [(False, []), (True, ["archive_corrupt"])])
async def test_7z_backups(tmp_path: Path, damaged: bool, expected: list[str]) -> None:
    path = tmp_path / "backups" / "SIPP-TAIS-2026-11-23.7z"
    path.parent.mkdir(parents=True)
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writestr(dump(rows=3000), "sipp.sql")
    if damaged:
        payload = bytearray(path.read_bytes())
        for offset in range(len(payload) // 2, len(payload) // 2 + 32):
            payload[offset] ^= 0xFF
        path.write_bytes(bytes(payload))
    written(path, BACKUP_WRITTEN)

    verdict = await verify(config(tmp_path))

    assert codes(verdict) == expected
    if not damaged:
        [checked] = verdict.evidence["backup"]["archive"]["dumps"]
        assert checked["name"] == "SIPP-TAIS-2026-11-23.7z: member sipp.sql"


def write_log(root: Path, *lines: str) -> Path:
    path = root / "sync.log"
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


async def test_a_failure_after_the_last_success_is_reported(
    good_backup: Path, tmp_path: Path
) -> None:
    log = write_log(
        tmp_path,
        "INFO - 2026-11-22 18:30:02 --> Sinkronisasi berhasil: 42 perkara",
        "ERROR - 2026-11-22 20:15:00 --> Query error: SELECT command denied for routine",
        "    #0 PDOException: execute command denied for routine 'sipp.sync_perkara'",
    )

    verdict = await verify(config(tmp_path, sync_log=log))

    assert codes(verdict) == ["log_failure_after_success"]
    found = verdict.evidence["sync_log"]["failure_after_success"]
    assert found["at"] == "2026-11-23T03:15:00+07:00"
    assert found["count"] == 2  # the untimestamped continuation line belongs to 03:15 WIB
    assert "2026-11-23 01:30:02 WIB" in verdict.reasons[0].message


async def test_a_success_after_earlier_failures_is_fine(good_backup: Path, tmp_path: Path) -> None:
    log = write_log(
        tmp_path,
        "ERROR - 2026-11-22 17:00:00 --> Sinkronisasi gagal: koneksi terputus",
        "INFO - 2026-11-22 17:00:01 --> Sinkronisasi selesai dengan error",
        "INFO - 2026-11-22 18:30:02 --> Sinkronisasi berhasil: 42 perkara",
    )

    verdict = await verify(config(tmp_path, sync_log=log))

    assert verdict.ok, verdict.reasons
    assert verdict.evidence["sync_log"]["last_success"]["at"] == "2026-11-23T01:30:02+07:00"


@pytest.mark.parametrize(
    ("stamp", "log_timezone", "expected"),
    [
        # 17:30 UTC on the 22nd is 00:30 WIB on the 23rd: the check date's sync.
        ("2026-11-22 17:30:00", "UTC", []),
        # The same text read as WIB is the evening before the check date.
        ("2026-11-22 17:30:00", "Asia/Jakarta", ["log_no_success"]),
        # 16:30 UTC on the 22nd is 23:30 WIB on the 22nd: too early.
        ("2026-11-22 16:30:00", "UTC", ["log_no_success"]),
        # 17:30 UTC on the 23rd is 00:30 WIB on the 24th: after the check date.
        ("2026-11-23 17:30:00", "UTC", ["log_no_success"]),
        # An explicit offset wins over log_timezone.
        ("2026-11-23T00:30:00+07:00", "UTC", []),
    ],
)
async def test_log_lines_are_dated_in_the_satker_timezone(
    good_backup: Path, tmp_path: Path, stamp: str, log_timezone: str, expected: list[str]
) -> None:
    log = write_log(tmp_path, f"INFO - {stamp} --> sync completed")
    cfg = config(
        tmp_path,
        sync_log=log,
        log_timezone=log_timezone,
        max_age_hours=48,
        log_timestamp_format=r"(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\+\d{2}:\d{2})?)",
    )

    verdict = await verify(cfg, now=datetime(2026, 11, 24, 9, 0, tzinfo=WIB))

    assert codes(verdict) == expected


async def test_a_configured_but_absent_log_is_missing(good_backup: Path, tmp_path: Path) -> None:
    verdict = await verify(config(tmp_path, sync_log=tmp_path / "nowhere.log"))

    assert codes(verdict) == ["log_missing"]


async def test_a_strptime_timestamp_format(good_backup: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path, "[23/11/2026 01:05:00] sync success (12 perkara)")
    cfg = config(
        tmp_path,
        sync_log=log,
        log_timezone="Asia/Jakarta",
        log_timestamp_format=r"^\[(?P<ts>[^\]]+)\]",
        log_timestamp_strptime="%d/%m/%Y %H:%M:%S",
    )

    verdict = await verify(cfg)

    assert verdict.ok, verdict.reasons


@dataclass
class SippDatabaseServer:
    admin: AsyncEngine
    name: str
    reader_url: str

    async def rows(self, internal: list[datetime], synced: list[datetime]) -> None:
        async with self.admin.begin() as connection:
            await connection.execute(sa.text(f"DELETE FROM {self.name}.perkara"))
            await connection.execute(sa.text(f"DELETE FROM {self.name}.perkara_sync"))
            for stamp in internal:
                await connection.execute(
                    sa.text(f"INSERT INTO {self.name}.perkara (diinput_tanggal) VALUES (:t)"),
                    {"t": stamp},
                )
            for stamp in synced:
                await connection.execute(
                    sa.text(f"INSERT INTO {self.name}.perkara_sync (synced_at) VALUES (:t)"),
                    {"t": stamp},
                )

    def config(self, url: str | None = None) -> SippDatabase:
        return SippDatabase(
            url=url or self.reader_url,
            internal_table="perkara",
            internal_column="diinput_tanggal",
            synced_table="perkara_sync",
            synced_column="synced_at",
        )


@pytest.fixture(scope="module")
async def sipp_server() -> AsyncIterator[SippDatabaseServer]:
    admin = create_async_engine(engine_url(MYSQL_URL), poolclass=NullPool)
    suffix = uuid.uuid4().hex[:10]
    name, reader, password = f"alur_sipp_test_{suffix}", f"alur_ro_{suffix}", uuid.uuid4().hex
    try:
        async with admin.begin() as connection:
            await connection.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as error:
        await admin.dispose()
        pytest.skip(f"no MariaDB/MySQL at {MYSQL_URL}: {error.orig}")
    try:
        async with admin.begin() as connection:
            for statement in (
                f"CREATE TABLE {name}.perkara (perkara_id INT AUTO_INCREMENT PRIMARY KEY, "
                "diinput_tanggal DATETIME NOT NULL)",
                f"CREATE TABLE {name}.perkara_sync (id INT AUTO_INCREMENT PRIMARY KEY, "
                "synced_at DATETIME NOT NULL)",
                f"CREATE USER '{reader}'@'%' IDENTIFIED BY '{password}'",
                f"GRANT SELECT ON {name}.* TO '{reader}'@'%'",
            ):
                await connection.execute(sa.text(statement))
        host = sa.make_url(MYSQL_URL)
        reader_url = f"mysql://{reader}:{password}@{host.host}:{host.port or 3306}/{name}"
        yield SippDatabaseServer(admin=admin, name=name, reader_url=reader_url)
    finally:
        async with admin.begin() as connection:
            await connection.execute(sa.text(f"DROP USER IF EXISTS '{reader}'@'%'"))
            await connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        await admin.dispose()


async def test_probe_in_sync(
    sipp_server: SippDatabaseServer, good_backup: Path, tmp_path: Path
) -> None:
    await sipp_server.rows(
        internal=[datetime(2026, 11, 22, 15, 0), datetime(2026, 11, 23, 7, 0)],
        synced=[datetime(2026, 11, 22, 15, 5), datetime(2026, 11, 23, 6, 30)],
    )

    verdict = await verify(config(tmp_path, database=sipp_server.config()))

    assert verdict.ok, verdict.reasons
    probe = verdict.evidence["probe"]
    assert probe["internal"]["newest"] == "2026-11-23 07:00:00"
    assert probe["synced"]["newest"] == "2026-11-23 06:30:00"
    assert probe["lag_minutes"] == 30
    assert sipp_server.reader_url.split(":")[2].split("@")[0] not in orjson.dumps(probe).decode()


async def test_probe_catches_a_silent_twelve_day_stall(
    sipp_server: SippDatabaseServer, good_backup: Path, tmp_path: Path
) -> None:
    await sipp_server.rows(
        internal=[datetime(2026, 11, 23, 7, 0)], synced=[datetime(2026, 11, 11, 7, 0)]
    )

    verdict = await verify(config(tmp_path, database=sipp_server.config()))

    assert codes(verdict) == ["sync_lagging"]
    assert verdict.evidence["probe"]["lag_minutes"] == 12 * 24 * 60
    assert "12.0 days behind" in verdict.reasons[0].message


async def test_probe_with_nothing_ever_synced(
    sipp_server: SippDatabaseServer, good_backup: Path, tmp_path: Path
) -> None:
    await sipp_server.rows(internal=[datetime(2026, 11, 23, 7, 0)], synced=[])

    verdict = await verify(config(tmp_path, database=sipp_server.config()))

    assert codes(verdict) == ["sync_lagging"]
    assert "perkara_sync.synced_at is empty" in verdict.reasons[0].message


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_probe_against_a_closed_port_fails_without_crashing(
    closed_port: int, good_backup: Path, tmp_path: Path
) -> None:
    database = SippDatabase(
        url=f"mysql://sipp_ro:secret@127.0.0.1:{closed_port}/sipp",
        internal_table="perkara",
        internal_column="diinput_tanggal",
        synced_table="perkara_sync",
        synced_column="synced_at",
    )

    verdict = await verify(config(tmp_path, database=database))

    assert codes(verdict) == ["probe_failed"]
    assert "secret" not in verdict.reasons[0].message
    assert f"127.0.0.1:{closed_port}" in verdict.reasons[0].message


async def test_probe_against_a_silent_server_times_out(good_backup: Path, tmp_path: Path) -> None:
    """A server that accepts and never greets must not hang the daily check."""

    async def accept_and_stay_silent(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(accept_and_stay_silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    database = SippDatabase(
        url=f"mysql://sipp_ro@127.0.0.1:{port}/sipp",
        internal_table="perkara",
        internal_column="diinput_tanggal",
        synced_table="perkara_sync",
        synced_column="synced_at",
    )
    try:
        started = time.monotonic()
        verdict = await verify(config(tmp_path, database=database))
        elapsed = time.monotonic() - started
    finally:
        server.close()
        await server.wait_closed()

    assert codes(verdict) == ["probe_failed"]
    assert elapsed < CONNECT_TIMEOUT_SECONDS + 3


async def test_probe_of_a_wrong_table_fails(
    sipp_server: SippDatabaseServer, good_backup: Path, tmp_path: Path
) -> None:
    database = sipp_server.config().model_copy(update={"synced_table": "sinkronisasi"})

    verdict = await verify(config(tmp_path, database=database))

    assert codes(verdict) == ["probe_failed"]
    assert "sinkronisasi" in verdict.reasons[0].message


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real entry point, as staff and cron run it."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", "sipp", "check", "--satker", "pn-tais", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def invoke_cli(*args: str) -> Result:
    """In process, for speed: the same Typer app without a fresh interpreter."""
    return CliRunner().invoke(cli, ["sipp", "check", "--satker", "pn-tais", *args])


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "sipp.json"
    path.write_bytes(orjson.dumps({"satker_code": "TAIS", "backup_dir": str(tmp_path / "backups")}))
    return path


def test_cli_prints_an_ok_verdict_and_exits_0(tmp_path: Path, config_file: Path) -> None:
    today = datetime.now(UTC).astimezone(WIB).date()
    make_zip(tmp_path / "backups" / f"SIPP-TAIS-{today}.zip", dump(), when=datetime.now(UTC))

    result = run_cli("--config", str(config_file), "--date", today.isoformat())

    assert result.returncode == 0, result.stderr
    verdict = orjson.loads(result.stdout)
    assert verdict["ok"] is True
    assert verdict["reasons"] == []
    assert verdict["evidence"]["backup"]["file"]["file"] == f"SIPP-TAIS-{today}.zip"


def test_cli_flags_override_the_file_and_a_failure_exits_1(
    tmp_path: Path, config_file: Path
) -> None:
    (tmp_path / "empty").mkdir()
    log = write_log(tmp_path, "INFO - 2026-11-22 18:30:02 --> sync completed")

    result = invoke_cli(
        "--config",
        str(config_file),
        "--backup-dir",
        str(tmp_path / "empty"),
        "--log",
        str(log),
        "--date",
        "2026-11-23",
    )

    assert result.exit_code == 1, result.stderr
    verdict = orjson.loads(result.stdout)
    assert verdict["ok"] is False
    assert [reason["code"] for reason in verdict["reasons"]] == ["backup_missing"]
    assert str(tmp_path / "empty") in verdict["reasons"][0]["message"]
    assert verdict["evidence"]["sync_log"]["file"] == str(log)
    assert verdict["evidence"]["day"] == "2026-11-23"


def test_cli_refuses_an_unusable_configuration(tmp_path: Path) -> None:
    result = invoke_cli("--backup-dir", str(tmp_path))

    assert result.exit_code == 2
    assert "satker_code: Field required" in result.stderr
    assert result.stdout == ""


def test_cli_refuses_a_bad_date(config_file: Path) -> None:
    result = invoke_cli("--config", str(config_file), "--date", "23-11-2026")

    assert result.exit_code == 2
    assert "is not a YYYY-MM-DD date" in result.stderr
