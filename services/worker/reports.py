"""Building reports too large for a request: the AMPUH evidence pack of a period."""

from __future__ import annotations

from typing import Any

import structlog

from services.core.db import utcnow
from services.core.errors import Unavailable
from services.core.reports import jobs
from services.worker.context import of, unit

log = structlog.get_logger(__name__)


async def build_report(ctx: dict[str, Any], job_id: str) -> str:
    context = of(ctx)
    async with unit(ctx) as work:
        record = await jobs.start(work.session, job_id, utcnow())
    if record is None:
        return "already finished"

    async def progress(done: int, total: int) -> None:
        async with unit(ctx) as step:
            await jobs.record_progress(step.session, job_id, done, total)

    work_dir = context.settings.data_dir / "uploads"
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        async with unit(ctx, read_only=True) as reading:
            summary = await jobs.build_to_store(
                reading.session, context.services, context.files, record, work_dir, utcnow(),
                progress,
            )  # fmt: skip
    except Unavailable:
        # The file store or the database is away: the job is tried again.
        raise
    except Exception as failed:
        log.exception("report failed", report_job=job_id, error_type=type(failed).__name__)
        async with unit(ctx) as work:
            await jobs.finish(work.session, job_id, utcnow(), error=type(failed).__name__)
        return "failed"
    async with unit(ctx) as work:
        await jobs.finish(work.session, job_id, utcnow(), summary=summary)
    log.info(
        "report built", report_job=job_id, instances=summary.instances, files=summary.files,
        size=summary.size,
    )  # fmt: skip
    return "done"


async def resend_report_jobs(ctx: dict[str, Any]) -> int:
    """Queue again the report jobs whose message was lost or whose worker died."""
    async with unit(ctx) as work:
        stale = await jobs.stale_jobs(work.session, utcnow())
        work.send(*stale)
    return len(stale)
