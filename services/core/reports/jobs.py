"""Report jobs: a report too large to build while a request waits (the AMPUH evidence
pack of a large period) is built by a worker. The request records a `report_job` row
and queues its job after commit; the worker builds the file, puts it in the file store
(`reports/<id>.zip`) and records the outcome; the client follows
`GET /v1/report-jobs/{id}` and downloads the file when it is `done`.

A job whose message was lost (Redis restarted) or whose worker died is queued again by
`stale_jobs`; its deterministic id keeps it from running twice at once.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, or_, select

from services.core.engine.state import Actor
from services.core.errors import AlurError, Conflict, NotFound
from services.core.files.storage import FileStore
from services.core.reports import pack
from services.core.reports.models import ReportJobRecord
from services.core.reports.periods import Period, between
from services.core.reports.service import satker_for_report
from services.core.satkers.service import Satker
from services.core.shared import Services
from services.core.work import queue_job

BUILD_REPORT = "build_report"
EVIDENCE_PACK = "evidence_pack"
# The longest a build may take (the worker's timeout for the job).
BUILD_TIMEOUT = timedelta(hours=1)
# A queued job not started after this was lost; a running one not finished, abandoned.
QUEUED_GRACE = timedelta(minutes=2)
RUNNING_GRACE = BUILD_TIMEOUT + timedelta(minutes=10)


class ReportJobNotFound(NotFound):
    code = "report_job_not_found"
    title = "No such report job"


class ReportNotReady(Conflict):
    code = "report_not_ready"
    title = "The report is not built yet"


class ReportFailed(AlurError):
    code = "report_failed"
    status = 410
    title = "The report could not be built"


@dataclass(frozen=True)
class ReportJob:
    """The worker's job that builds report job `id`, queued after commit."""

    id: str

    @property
    def job_id(self) -> str:
        return f"report:{self.id}"

    async def send(self, queue: ArqRedis, *, request_id: str | None = None) -> bool:
        return await queue_job(
            queue, BUILD_REPORT, self.id, job_id=self.job_id, request_id=request_id
        )


def file_name(record: ReportJobRecord) -> str:
    return f"{record.id}.zip"


def download_name(record: ReportJobRecord) -> str:
    return f"paket-bukti-{record.satker_id}-{record.params['from']}-{record.params['to']}.zip"


async def create_pack_job(
    session: AsyncSession, services: Services, actor: Actor, satker: Satker, period: Period,
    now: datetime,
) -> tuple[ReportJobRecord, ReportJob]:  # fmt: skip
    record = ReportJobRecord(
        id=services.new_id(),
        satker_id=satker.id,
        kind=EVIDENCE_PACK,
        params={"from": period.first.isoformat(), "to": period.last.isoformat()},
        status="queued",
        requested_by=actor.sub,
        created_at=now,
    )
    session.add(record)
    await session.flush()
    return record, ReportJob(record.id)


async def visible_job(
    session: AsyncSession, services: Services, actor: Actor, job_id: str
) -> ReportJobRecord:
    record = await session.get(ReportJobRecord, job_id) if len(job_id) <= 36 else None
    if record is None:
        raise ReportJobNotFound(f"No report job {job_id[:40]!r}")
    try:
        await satker_for_report(session, services, actor, record.satker_id)
    except NotFound:
        raise ReportJobNotFound(f"No report job {job_id[:40]!r}") from None
    return record


def ready(record: ReportJobRecord) -> None:
    if record.status == "failed":
        raise ReportFailed(f"The report could not be built: {record.error or 'unknown error'}")
    if record.status != "done":
        raise ReportNotReady(
            f"The report is {record.status} ({record.progress} of {record.total}); ask again later",
            extra={"status": record.status},
        )


async def start(session: AsyncSession, job_id: str, now: datetime) -> ReportJobRecord | None:
    """Mark the job running; None when it is done or failed already (a repeat)."""
    record = await session.get(ReportJobRecord, job_id)
    if record is None or record.status in ("done", "failed"):
        return None
    record.status, record.started_at, record.progress = "running", now, 0
    await session.flush()
    return record


async def record_progress(session: AsyncSession, job_id: str, done: int, total: int) -> None:
    record = await session.get(ReportJobRecord, job_id)
    if record is not None:
        record.progress, record.total = done, total
        await session.flush()


async def finish(
    session: AsyncSession, job_id: str, now: datetime, *,
    summary: pack.PackSummary | None = None, error: str | None = None,
) -> None:  # fmt: skip
    record = await session.get(ReportJobRecord, job_id)
    if record is None:
        return
    record.finished_at = now
    if summary is not None:
        record.status, record.size, record.sha256 = "done", summary.size, summary.sha256
        record.progress = record.total = summary.instances
    else:
        record.status, record.error = "failed", (error or "")[:1000]
    await session.flush()


def period_of(record: ReportJobRecord) -> Period:
    return between(
        date.fromisoformat(record.params["from"]), date.fromisoformat(record.params["to"])
    )


async def build_to_store(
    session: AsyncSession,
    services: Services,
    store: FileStore,
    record: ReportJobRecord,
    work_dir: Path,
    now: datetime,
    progress: pack.Progress,
) -> pack.PackSummary:
    """Build the job's pack into a temporary file, then into the file store."""
    directory = await services.directory(session, record.satker_id)
    satker = directory.get(record.satker_id)
    with tempfile.TemporaryDirectory(dir=work_dir) as scratch:
        out = Path(scratch) / "pack.zip"
        summary = await pack.build(
            session, services, store, satker, period_of(record), out, now=now, progress=progress
        )
        await store.put_report(file_name(record), out)
    return summary


async def stale_jobs(session: AsyncSession, now: datetime) -> list[ReportJob]:
    rows = await session.scalars(
        select(ReportJobRecord).where(
            or_(
                (col(ReportJobRecord.status) == "queued")
                & (col(ReportJobRecord.created_at) < now - QUEUED_GRACE),
                (col(ReportJobRecord.status) == "running")
                & (col(ReportJobRecord.started_at) < now - RUNNING_GRACE),
            )
        )
    )
    return [ReportJob(record.id) for record in rows.all()]
