"""Thin job shells: open a unit of work, call a core use case, log what happened."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from arq import Retry

from services.core.automation.service import StepCannotRun, flag_step, run_step
from services.core.availability import database_unavailable
from services.core.db import unit_of_work, utcnow
from services.core.instances import queries
from services.core.instances.deadlines import sweep_backlog
from services.core.instances.jobs import QUEUE_NAME, QueuedJob, enqueue_jobs
from services.core.logging import current_request_id
from services.core.monitors import renewals
from services.core.monitors import service as monitors
from services.core.sipp import service as sipp
from services.worker.context import of

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
    async with unit_of_work(context.sessions) as session:
        jobs = []
        for task, sop_version in await queries.stranded_automated_tasks(
            session, opened_before=utcnow() - STRANDED_AFTER
        ):
            definition = await context.services.definition(session, task.sop_code, sop_version)
            job = definition.step(task.step_id).job
            if job is not None:
                jobs.append(QueuedJob(instance_id=task.instance_id, task_id=task.id, job=job))
    await enqueue_jobs(ctx["redis"], jobs)
    return len(jobs)


def backoff_seconds(job_try: int) -> int:
    """5 s, 20 s, 80 s, 320 s, ... between tries of an automated step."""
    return int(5 * 4 ** (job_try - 1))


async def run_automated_step(ctx: dict[str, Any], instance_id: str, task_id: str, job: str) -> str:
    context = of(ctx)
    job_try = int(ctx.get("job_try", 1))
    try:
        async with unit_of_work(context.sessions) as session:
            applied = await run_step(
                session,
                context.services,
                context.handlers,
                instance_id=instance_id,
                task_id=task_id,
                job=job,
                now=utcnow(),
            )
        if applied is None:
            return "nothing to do"
        # The next step may be automated too: its job goes out once this one committed.
        await enqueue_jobs(
            ctx["redis"],
            applied.queued_jobs(),
            # A chain of automated steps keeps the id of the request that started it.
            request_id=current_request_id(),
        )
        return "completed"
    except StepCannotRun as exc:
        reason = str(exc)
    except Exception as exc:
        if database_unavailable(exc):
            raise  # an outage, not a failure of the step: retried, never flagged for it
        if job_try < context.settings.worker.max_tries:
            log.warning("automated step failed; retrying", job=job, task=task_id, error=str(exc))
            raise Retry(defer=backoff_seconds(job_try)) from exc
        reason = f"{job} failed {job_try} times; last error: {type(exc).__name__}: {exc}"
    async with unit_of_work(context.sessions) as session:
        await flag_step(
            session,
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
    async with unit_of_work(context.sessions) as session:
        opened = await sipp.open_daily_instances(session, context.services, utcnow())
    jobs = [job for applied in opened for job in applied.queued_jobs()]
    await enqueue_jobs(ctx["redis"], jobs)
    return len(opened)


async def schedule_monitors(ctx: dict[str, Any]) -> int:
    """Dispatch every monitor check that is due, one job per monitor and slot."""
    context = of(ctx)
    async with unit_of_work(context.sessions) as session:
        due = await monitors.due_monitors(session, utcnow())
    for monitor_id, slot in due:
        await ctx["redis"].enqueue_job(
            "check_monitor",
            monitor_id,
            slot.isoformat(),
            _job_id=f"monitor:{monitor_id}:{slot.timestamp():.0f}",
            _queue_name=QUEUE_NAME,
        )
    return len(due)


async def check_monitor(ctx: dict[str, Any], monitor_id: str, scheduled_at: str) -> str:
    context = of(ctx)
    async with unit_of_work(context.sessions) as session:
        check = await monitors.run_check(
            session,
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
    async with unit_of_work(context.sessions) as session:
        started = await renewals.remind_due(session, context.services, utcnow())
    return len(started)
