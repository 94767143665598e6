"""The AMPUH evidence pack: a ZIP of the completed instances of a satker in a period.

    00-indeks.pdf                      the index: per SOP, its instances and files
    01-rkakl/001-5f0c8a52-.../rekaman.pdf   the record of one instance: timeline,
                                            actors, durations against the standard,
                                            evidence list with hashes, audit verdict
    01-rkakl/001-5f0c8a52-.../bukti/1-berita-acara.pdf   its evidence files
    MANIFEST.sha256                    SHA-256 of every other member (`sha256sum -c`)

Built in bounded memory: instances are read one at a time, evidence files are copied
from the file store in chunks, and the ZIP is written to a file (by a worker thread, so
the event loop stays free). An evidence file whose content no longer matches its hash is
packed all the same and named in the index and the record, so the pack shows it.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import unicodedata
import zipfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import obstore
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.audit import events as audit_events
from services.core.audit.hashchain import verify_chain
from services.core.engine.calendar import WorkingCalendar
from services.core.engine.definition import Role, SopDefinition
from services.core.files.models import EvidenceFileRecord
from services.core.files.storage import FileStore, content_key
from services.core.instances import repository
from services.core.instances.models import InstanceRecord
from services.core.reports.pdf import (
    InstanceRecordDoc,
    PackEntry,
    RecordEvent,
    RecordFile,
    RecordTask,
    instance_record_pdf,
    pack_index_pdf,
)
from services.core.reports.periods import Period, local_stamp, working_span_id
from services.core.satkers.service import Satker
from services.core.shared import Services

MANIFEST = "MANIFEST.sha256"
# An instance's status as the record writes it.
_STATUS_ID = {"completed": "selesai", "cancelled": "dibatalkan", "active": "berjalan"}
INDEX = "00-indeks.pdf"
_CHUNK = 1024 * 1024
# Evidence (PDFs, images, office files) is compressed already: stored as it is.
_STORED = zipfile.ZIP_STORED

Progress = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True)
class PackSize:
    instances: int
    file_bytes: int


@dataclass
class PackSummary:
    instances: int = 0
    files: int = 0
    size: int = 0
    sha256: str = ""
    mismatched: list[str] = field(default_factory=list)


def _completed(satker_id: str, start: datetime, end: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        col(InstanceRecord.satker_id) == satker_id,
        col(InstanceRecord.status) == "completed",
        col(InstanceRecord.ended_at) >= start,
        col(InstanceRecord.ended_at) < end,
    )


async def measure(session: AsyncSession, satker: Satker, period: Period) -> PackSize:
    """How many instances the pack holds and the bytes of their evidence files."""
    start, end = period.bounds(satker.timezone)
    count = await session.scalar(
        select(sa.func.count()).select_from(InstanceRecord).where(_completed(satker.id, start, end))
    )
    size = await session.scalar(
        select(sa.func.coalesce(sa.func.sum(col(EvidenceFileRecord.size)), 0))
        .join(InstanceRecord, col(InstanceRecord.id) == col(EvidenceFileRecord.instance_id))
        .where(_completed(satker.id, start, end))
    )
    return PackSize(int(count or 0), int(size or 0))


def _slug(text: str, limit: int = 40) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:limit].strip("-") or "x"


class _Writer:
    """The ZIP and its manifest; every method runs in a worker thread."""

    def __init__(self, out: Path, store: FileStore) -> None:
        self.zip = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
        self.store = store
        self.manifest: list[tuple[str, str]] = []

    def add_bytes(self, name: str, data: bytes) -> None:
        self.zip.writestr(name, data)
        self.manifest.append((hashlib.sha256(data).hexdigest(), name))

    def add_file(self, name: str, sha256: str) -> bool:
        """Copy stored content into the ZIP; False when it no longer matches `sha256`."""
        digest = hashlib.sha256()
        info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
        info.compress_type = _STORED
        result = obstore.get(self.store.store, content_key(sha256))
        target: IO[bytes]
        with self.zip.open(info, "w", force_zip64=True) as target:
            for chunk in result.stream(min_chunk_size=_CHUNK):
                data = bytes(chunk)
                digest.update(data)
                target.write(data)
        actual = digest.hexdigest()
        self.manifest.append((actual, name))
        return actual == sha256

    def close(self) -> None:
        lines = "".join(f"{digest}  {name}\n" for digest, name in self.manifest)
        self.zip.writestr(MANIFEST, lines.encode())
        self.zip.close()


async def build(
    session: AsyncSession,
    services: Services,
    store: FileStore,
    satker: Satker,
    period: Period,
    out: Path,
    *,
    now: datetime,
    progress: Progress | None = None,
) -> PackSummary:
    """Write the pack of `satker`'s instances completed in `period` to `out`."""
    start, end = period.bounds(satker.timezone)
    ids = [
        (instance_id, code, version)
        for instance_id, code, version in (
            await session.execute(
                select(
                    col(InstanceRecord.id),
                    col(InstanceRecord.sop_code),
                    col(InstanceRecord.sop_version),
                )
                .where(_completed(satker.id, start, end))
                .order_by(col(InstanceRecord.ended_at), col(InstanceRecord.id))
            )
        ).all()
    ]
    definitions = {
        (code, version): await services.definition(session, code, version)
        for code, version in {(code, version) for _, code, version in ids}
    }
    order = sorted({code for _, code, _ in ids}, key=lambda c: (_number(definitions, c), c))
    folders = {code: f"{_number(definitions, code):02d}-{_slug(code)}" for code in order}
    calendar = await services.calendars.get(session, satker)
    writer = _Writer(out, store)
    summary = PackSummary()
    entries: dict[str, PackEntry] = {
        code: PackEntry(folders[code], _title(definitions, code), 0, 0) for code in order
    }
    counters: dict[str, int] = dict.fromkeys(order, 0)
    try:
        ordered = sorted(ids, key=lambda item: order.index(item[1]))
        for done, (instance_id, code, version) in enumerate(ordered, start=1):
            counters[code] += 1
            folder = f"{folders[code]}/{counters[code]:03d}-{instance_id[:8]}"
            files = await _add_instance(
                session, writer, definitions[(code, version)], calendar, satker, instance_id,
                folder, summary, services.roles,
            )  # fmt: skip
            entries[code].instances += 1
            entries[code].files += files
            summary.instances += 1
            summary.files += files
            if progress is not None and (done % 20 == 0 or done == len(ordered)):
                await progress(done, len(ordered))
        index = pack_index_pdf(
            satker.name, period.label_id, local_stamp(now, satker.timezone),
            list(entries.values()), summary.files,
        )  # fmt: skip
        await asyncio.to_thread(writer.add_bytes, INDEX, index)
    finally:
        await asyncio.to_thread(writer.close)
    summary.size, summary.sha256 = await asyncio.to_thread(_digest, out)
    return summary


async def _add_instance(
    session: AsyncSession,
    writer: _Writer,
    definition: SopDefinition,
    calendar: WorkingCalendar,
    satker: Satker,
    instance_id: str,
    folder: str,
    summary: PackSummary,
    roles: Mapping[str, Role],
) -> int:
    found = await repository.load(session, instance_id)
    assert found is not None
    record, tasks = found
    events = await audit_events.events_of(session, instance_id)
    verdict = verify_chain(instance_id, events, record.event_count, record.head_hash)
    files = (
        await session.scalars(
            select(EvidenceFileRecord)
            .where(col(EvidenceFileRecord.instance_id) == instance_id)
            .order_by(col(EvidenceFileRecord.uploaded_at), col(EvidenceFileRecord.id))
        )
    ).all()
    zone = satker.timezone
    steps = {step.id: step for step in definition.steps}
    lanes = {role_id: role.name for role_id, role in roles.items()}
    rows = []
    for task in tasks:
        step = steps.get(task.step_id)
        standard = step.time_standard if step else None
        took = verdict_text = "-"
        if task.completed_at is not None:
            span = calendar.working_time_between(task.opened_at, task.completed_at)
            took = working_span_id(span / timedelta(seconds=1))
            if task.due_at is None:
                verdict_text = "tanpa standar"
            else:
                verdict_text = "tepat waktu" if task.completed_at <= task.due_at else "terlambat"
        rows.append(
            RecordTask(
                step=f"{step.number}. {step.activity}" if step else task.step_id,
                lane=lanes.get(task.lane, task.lane),
                opened=local_stamp(task.opened_at, zone),
                done=local_stamp(task.completed_at, zone) if task.completed_at else "-",
                took=took,
                standard=standard.source_text if standard else "-",
                verdict=verdict_text if task.status.value != "cancelled" else "dibatalkan",
            )
        )
    packed: list[RecordFile] = []
    for number, file in enumerate(files, start=1):
        path = f"{folder}/bukti/{number}-{file.name}"
        ok = await asyncio.to_thread(writer.add_file, path, file.sha256)
        if not ok:
            summary.mismatched.append(path)
        packed.append(
            RecordFile(
                name=file.name,
                media_type=file.media_type,
                size=file.size,
                sha256=file.sha256 if ok else f"{file.sha256} (ISI TIDAK SESUAI)",
                path=f"bukti/{number}-{file.name}",
            )
        )
    audit = (
        f"utuh: {verdict.events} peristiwa, rantai hash sah"
        if verdict.valid
        else "RUSAK: " + "; ".join(verdict.problems)
    )
    document = InstanceRecordDoc(
        sop=f"SOP {definition.number:02d} {definition.title} (versi {definition.version})",
        title=record.title,
        instance_id=instance_id,
        satker_name=satker.name,
        started=local_stamp(record.started_at, zone),
        ended=local_stamp(record.ended_at, zone) if record.ended_at else "-",
        status=_STATUS_ID.get(record.status, record.status),
        audit=audit,
        tasks=rows,
        events=[
            RecordEvent(
                when=local_stamp(event.occurred_at, zone),
                what=_event_text(event.type, event.data),
                who=event.actor_name or event.actor,
            )
            for event in events
        ],
        files=packed,
    )
    pdf = instance_record_pdf(document)
    await asyncio.to_thread(writer.add_bytes, f"{folder}/rekaman.pdf", pdf)
    return len(files)


def _event_text(kind: str, data: dict[str, object]) -> str:
    detail = ""
    if kind == "comment.added" or kind == "instance.cancelled":
        detail = str(data.get("text") or data.get("reason") or "")
    elif kind == "file.attached":
        detail = f"{data.get('name')} (sha256 {str(data.get('sha256'))[:16]}...)"
    elif kind.startswith("task."):
        after = data.get("after")
        if isinstance(after, dict):
            detail = str(after.get("step_id", ""))
            if after.get("outcome"):
                detail += f" -> {after['outcome']}"
    return f"{kind} {detail}".strip()


def _digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _number(definitions: dict[tuple[str, int], SopDefinition], code: str) -> int:
    return next((d.number for (c, _), d in definitions.items() if c == code), 99)


def _title(definitions: dict[tuple[str, int], SopDefinition], code: str) -> str:
    return next((d.title for (c, _), d in definitions.items() if c == code), code)
