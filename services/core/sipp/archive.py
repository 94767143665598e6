"""Archive integrity and dump completeness, read as streams: SIPP backups run to gigabytes.

A `.zip` or `.7z` passes when every member decompresses and matches its CRC; a dump
(`.sql`, a decompressed `.sql.gz`, or such a member inside an archive) passes when its
last non-blank line is mysqldump's `-- Dump completed …` (mariadb-dump writes the same
line; a dump made with `--skip-comments` cannot be judged and fails). Only the last
`TAIL_BYTES` of each stream are kept.
"""

from __future__ import annotations

import gzip
import re
import zipfile
import zlib
from pathlib import Path
from typing import Protocol

import py7zr
from py7zr.exceptions import CrcError, PasswordRequired, UnsupportedCompressionMethodError
from py7zr.io import Py7zIO, WriterFactory

from services.core.sipp.reasons import Findings, ReasonCode, quote

CHUNK_BYTES = 1 << 20
TAIL_BYTES = 64 << 10
DUMP_SUFFIXES = (".sql", ".sql.gz")
# A disk that damages one member usually damages many; past this many, naming more
# members adds nothing staff can act on.
MAX_BAD_MEMBERS = 5
_COMPLETED = re.compile(rb"^-- Dump completed\b")
_RERUN = "re-run the backup"


def is_dump(name: str) -> bool:
    return name.lower().endswith(DUMP_SUFFIXES)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def drain(stream: Readable) -> tuple[bytes, int]:
    """Read `stream` to its end (so CRCs get checked); return its tail and its length."""
    tail = b""
    total = 0
    while chunk := stream.read(CHUNK_BYTES):
        total += len(chunk)
        tail = (tail + chunk)[-TAIL_BYTES:]
    return tail, total


def last_line(tail: bytes) -> str:
    for raw in reversed(tail.splitlines()):
        if raw.strip():
            return quote(raw.strip().decode("utf-8", errors="replace"))
    return ""


def judge_dump(findings: Findings, label: str, tail: bytes, size: int) -> None:
    """Record one dump's ending in the evidence; fail when it is not mysqldump's last line."""
    ending = last_line(tail)
    findings.evidence.setdefault("dumps", []).append(
        {"name": label, "uncompressed_bytes": size, "last_line": ending}
    )
    if _COMPLETED.match(ending.encode()):
        return
    shown = f"it ends with {ending!r}" if ending else "it is empty"
    findings.fail(
        ReasonCode.DUMP_INCOMPLETE,
        f"{label} does not end with mysqldump's '-- Dump completed' line ({shown}) — "
        f"the dump was cut short; {_RERUN}",
    )


def check_archive(path: Path, kind: str) -> Findings:
    """Integrity and dump completeness of one backup file of `kind` (see `BACKUP_KINDS`)."""
    findings = Findings(evidence={"kind": kind})
    try:
        if kind == "sql":
            _check_sql(path, findings)
        elif kind == "sql.gz":
            _check_gzip(path, findings)
        elif kind == "zip":
            _check_zip(path, findings)
        else:
            _check_7z(path, findings)
    except Exception as error:
        # Parsers of damaged archives raise all kinds of exceptions (struct.error,
        # IndexError, …); whatever the file does, the check must end in a verdict.
        findings.fail(
            ReasonCode.ARCHIVE_CORRUPT,
            f"{path.name} could not be read ({type(error).__name__}: {error}) — {_RERUN}",
        )
    return findings


def _check_sql(path: Path, findings: Findings) -> None:
    with path.open("rb") as stream:
        size = stream.seek(0, 2)
        stream.seek(max(0, size - TAIL_BYTES))
        tail = stream.read()
    judge_dump(findings, path.name, tail, size)


def _check_gzip(path: Path, findings: Findings) -> None:
    try:
        with gzip.open(path, "rb") as stream:
            tail, size = drain(stream)
    except (OSError, EOFError, zlib.error) as error:
        findings.fail(
            ReasonCode.ARCHIVE_CORRUPT,
            f"{path.name} does not decompress ({_describe(error)}) — {_RERUN}",
        )
        return
    judge_dump(findings, path.name, tail, size)


def _describe(error: BaseException) -> str:
    if isinstance(error, EOFError):
        return "it ends before the compressed stream does: the file is truncated"
    return f"{type(error).__name__}: {error}"


def _check_zip(path: Path, findings: Findings) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        findings.fail(
            ReasonCode.ARCHIVE_CORRUPT,
            f"{path.name} cannot be opened as a zip archive ({error}) — the backup or its "
            f"copy is incomplete; {_RERUN}",
        )
        return
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        findings.evidence["members"] = len(members)
        bad = 0
        for info in members:
            if bad >= MAX_BAD_MEMBERS:
                findings.evidence["stopped_after_bad_members"] = bad
                return
            label = f"{path.name}: member {info.filename}"
            try:
                with archive.open(info) as member:
                    if info.filename.lower().endswith(".gz"):
                        with gzip.GzipFile(fileobj=member) as inner:
                            tail, size = drain(inner)
                    else:
                        tail, size = drain(member)
            except (NotImplementedError, RuntimeError) as error:
                # zipfile cannot read Deflate64 (Windows, 7-Zip on big files) nor encryption.
                findings.fail(
                    ReasonCode.ARCHIVE_UNSUPPORTED,
                    f"{label} cannot be checked ({error}) — create the zip with plain Deflate "
                    "and no password, or back up to .7z",
                )
                return
            except zipfile.BadZipFile as error:
                bad += 1
                problem = "fails its CRC check" if "CRC" in str(error) else f"is damaged ({error})"
                findings.fail(ReasonCode.ARCHIVE_CORRUPT, f"{label} {problem} — {_RERUN}")
                continue
            except (OSError, EOFError, zlib.error) as error:
                bad += 1
                findings.fail(
                    ReasonCode.ARCHIVE_CORRUPT,
                    f"{label} does not decompress ({_describe(error)}) — {_RERUN}",
                )
                continue
            if is_dump(info.filename):
                judge_dump(findings, label, tail, size)
        if not bad and not findings.evidence.get("dumps"):
            _no_dump(findings, path.name, len(members))


def _no_dump(findings: Findings, name: str, members: int) -> None:
    findings.fail(
        ReasonCode.DUMP_MISSING,
        f"{name} holds no .sql or .sql.gz dump among its {members} member(s) — the database "
        f"dump was left out; {_RERUN} with the database dump",
    )


class _TailIO(Py7zIO):
    """Keeps a member's length and, for dumps, its tail, instead of writing it anywhere."""

    def __init__(self, keep_tail: bool) -> None:
        self.keep_tail = keep_tail
        self.tail = b""
        self.total = 0

    def write(self, s: bytes | bytearray) -> int:
        self.total += len(s)
        if self.keep_tail:
            self.tail = (self.tail + bytes(s))[-TAIL_BYTES:]
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.total

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self.total


class _TailFactory(WriterFactory):
    def __init__(self) -> None:
        self.members: dict[str, _TailIO] = {}

    def create(self, filename: str) -> Py7zIO:
        writer = _TailIO(keep_tail=is_dump(filename))
        self.members[filename] = writer
        return writer


def _check_7z(path: Path, findings: Findings) -> None:
    factory = _TailFactory()
    try:
        with py7zr.SevenZipFile(path, mode="r") as archive:
            archive.extractall(factory=factory)
    except (PasswordRequired, UnsupportedCompressionMethodError) as error:
        findings.fail(
            ReasonCode.ARCHIVE_UNSUPPORTED,
            f"{path.name} cannot be checked ({error}) — create the .7z without a password "
            "using LZMA2",
        )
        return
    except CrcError as error:
        member = error.args[2] if len(error.args) > 2 and error.args[2] else "a member"
        findings.fail(
            ReasonCode.ARCHIVE_CORRUPT, f"{path.name}: {member} fails its CRC check — {_RERUN}"
        )
        return
    findings.evidence["members"] = len(factory.members)
    dumps = {name: io for name, io in factory.members.items() if io.keep_tail}
    for name, io in dumps.items():
        judge_dump(findings, f"{path.name}: member {name}", io.tail, io.total)
    if not dumps:
        _no_dump(findings, path.name, len(factory.members))
