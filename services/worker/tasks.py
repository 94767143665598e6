"""Thin job shells: open a unit of work, call a core use case, log what happened."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from arq import Retry

from services.core.automation.service import StepCannotRun, flag_step, run_step
from services.core.availability import database_unavailable
from services.core.db import utcnow
from services.core.instances import queries
from services.core.instances.jobs import QueuedJob
from services.core.monitors import renewals
from services.core.monitors import service as monitors
from services.core.monitors.jobs import MonitorCheckJob
from services.core.reviews import service as reviews
from services.core.sipp import service as sipp
from services.worker.context import of, unit
from services.worker.sweep import sweep_backlog

log = structlog.get_logger(__name__)

# A sweep run stops starting new batches after this, leaving the rest to the next run.
SWEEP_BUDGET_SECONDS = 45.0
# An automated step's job normally starts within seconds; after this, it was lost.
STRANDED_AFTER = timedelta(minutes=2)


async def deadline_sweep(ctx: dict[str, Any]) -> dict[str, int]:
    """Warn, mark overdue and escalate whatever fell due since the last sweep."""
    context = of(ctx)
    report = await sweep_backlog(
        context.sessions,
        context.services,
        utcnow(),
        multiples=context.settings.worker.escalation_multiples,
        budget_seconds=SWEEP_BUDGET_SECONDS,
        parallel=context.settings.worker.sweep_parallel_batches,
    )
    if report.events:
        log.info("deadline sweep", **report.event_types)
    totals = {
        "events": report.events,
        "tasks": report.tasks,
        "instances": report.instances,
        "batches": report.batches,
    }
    totals["resent"] = await resend_stranded_steps(ctx)
    return totals


async def resend_stranded_steps(ctx: dict[str, Any]) -> int:
    """Enqueue again the automated steps whose job message was lost. The job id is the
    task's, so a step whose job is still queued or running is not doubled."""
    context = of(ctx)
    async with unit(ctx) as work:
        jobs = []
        for task, sop_version in await queries.stranded_automated_tasks(
            work.session, opened_before=utcnow() - STRANDED_AFTER
        ):
            definition = await context.services.definition(work.session, task.sop_code, sop_version)
            job = definition.step(task.step_id).job
            if job is not None:
                jobs.append(QueuedJob(instance_id=task.instance_id, task_id=task.id, job=job))
        work.send(*jobs)
    return len(jobs)


def backoff_seconds(job_try: int) -> int:
    """5 s, 20 s, 80 s, 320 s, ... between tries of an automated step."""
    return int(5 * 4 ** (job_try - 1))


async def run_automated_step(ctx: dict[str, Any], instance_id: str, task_id: str, job: str) -> str:
    context = of(ctx)
    job_try = int(ctx.get("job_try", 1))
    try:
        async with unit(ctx) as work:
            applied = await run_step(
                work.session,
                context.services,
                context.handlers,
                instance_id=instance_id,
                task_id=task_id,
                job=job,
                now=utcnow(),
            )
            # The next step may be automated too: its job goes out once this one
            # committed, with the id of the request that started the chain.
            if applied is not None:
                work.send(*applied.queued_jobs())
        return "nothing to do" if applied is None else "completed"
    except StepCannotRun as exc:
        reason = str(exc)
    except Exception as exc:
        if database_unavailable(exc):
            raise  # an outage, not a failure of the step: retried, never flagged for it
        if job_try < context.settings.worker.max_tries:
            log.warning("automated step failed; retrying", job=job, task=task_id, error=str(exc))
            raise Retry(defer=backoff_seconds(job_try)) from exc
        reason = f"{job} failed {job_try} times; last error: {type(exc).__name__}: {exc}"
    async with unit(ctx) as work:
        await flag_step(
            work.session,
            context.services,
            instance_id=instance_id,
            task_id=task_id,
            reason=reason,
            now=utcnow(),
        )
    log.error("automated step flagged for a person", job=job, task=task_id, reason=reason)
    return "flagged"


async def daily_backup_checks(ctx: dict[str, Any]) -> int:
    """Open today's SOP 10 instance for every satker with a SIPP check configuration,
    on its working days; its automated steps do the checking."""
    context = of(ctx)
    async with unit(ctx) as work:
        opened = await sipp.open_daily_instances(work.session, context.services, utcnow())
        work.send(*(job for applied in opened for job in applied.queued_jobs()))
    return len(opened)


async def schedule_monitors(ctx: dict[str, Any]) -> int:
    """Dispatch every monitor check that is due, one job per monitor and slot."""
    async with unit(ctx) as work:
        due = await monitors.due_monitors(work.session, utcnow())
        work.send(*(MonitorCheckJob(monitor_id, slot) for monitor_id, slot in due))
    return len(due)


async def check_monitor(ctx: dict[str, Any], monitor_id: str, scheduled_at: str) -> str:
    context = of(ctx)
    async with unit(ctx) as work:
        check = await monitors.run_check(
            work.session,
            context.services,
            context.http,
            context.monitor_options,
            monitor_id=monitor_id,
            scheduled_at=datetime.fromisoformat(scheduled_at),
            now=utcnow(),
        )
    return "inactive" if check is None else ("up" if check.up else "down")


async def remind_renewals(ctx: dict[str, Any]) -> int:
    context = of(ctx)
    async with unit(ctx) as work:
        started = await renewals.remind_due(work.session, context.services, utcnow())
    return len(started)


async def open_sop_reviews(ctx: dict[str, Any]) -> int:
    """Open the yearly SOP reviews that fell due (once each: `sop_review` is unique)."""
    context = of(ctx)
    async with unit(ctx) as work:
        opened = await reviews.open_due(work.session, context.services, utcnow())
    if opened:
        log.info("sop reviews opened", count=len(opened))
    return len(opened)
