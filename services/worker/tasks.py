"""Thin job shells: open a unit of work, call a core use case, log what happened."""

from __future__ import annotations

from typing import Any

import structlog
from arq import Retry

from services.core.automation.service import UnknownJob, flag_step, run_step
from services.core.db import unit_of_work, utcnow
from services.core.instances.deadlines import SweepRaced, sweep
from services.worker.context import of

log = structlog.get_logger(__name__)


async def deadline_sweep(ctx: dict[str, Any]) -> dict[str, int]:
    """Warn, mark overdue and escalate whatever fell due since the last sweep."""
    context = of(ctx)
    try:
        async with unit_of_work(context.sessions) as session:
            report = await sweep(
                session,
                context.services,
                utcnow(),
                multiples=context.settings.worker.escalation_multiples,
            )
    except SweepRaced as exc:
        log.info("sweep raced a transition; the next sweep retries", reason=str(exc))
        return {"events": 0}
    if report.events:
        log.info("deadline sweep", **report.event_types)
    return {"events": report.events, "tasks": report.tasks, "instances": report.instances}


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
        return "nothing to do" if applied is None else "completed"
    except UnknownJob as exc:
        reason = str(exc)
    except Exception as exc:
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
