"""The one place that lists every job and cron job the workers run.

Cron jobs are `unique`: arq derives each run's job id from the cron's name and
scheduled time, so with N worker replicas each run happens once. The Redis connection
is given by `alur worker` (from settings, or the embedded Redis of `alur dev`), which
runs these settings in `runner.AlurWorker`; the heartbeat is no job (see `heartbeat`).
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from arq import cron, func
from arq.cron import CronJob
from arq.typing import WorkerCoroutine

from services.core.logging import configure_logging
from services.core.reports.jobs import BUILD_TIMEOUT
from services.core.runtime import freeze_startup_heap
from services.core.settings import get_settings
from services.core.work import QUEUE_NAME
from services.worker.context import shutdown, startup
from services.worker.heartbeat import HEARTBEAT_TTL_SECONDS
from services.worker.instrumentation import instrumented
from services.worker.notifications import relay_notifications, send_notifications
from services.worker.reports import build_report, resend_report_jobs
from services.worker.tasks import (
    check_monitor,
    daily_backup_checks,
    deadline_sweep,
    open_sop_reviews,
    remind_renewals,
    run_automated_step,
    schedule_monitors,
)
from services.worker.webhooks_in import process_inbound_message, resend_waiting_messages
from services.worker.webhooks_out import (
    deliver_webhook,
    deliver_webhooks,
    relay_outbox,
    sweep_webhook_deliveries,
)


def every(job: Any, seconds: int) -> CronJob:
    """A cron job running every `seconds` (a divisor of a minute, or whole minutes)."""
    job = instrumented(job, scheduled=True)
    if seconds < 60:
        return cron(job, second=set(range(0, 60, seconds)))
    return cron(job, second={0}, minute=set(range(0, 60, max(1, seconds // 60))))


async def on_startup(ctx: dict[str, Any]) -> None:
    configure_logging(get_settings().log)
    await startup(ctx)


async def on_process_startup(ctx: dict[str, Any]) -> None:
    """`on_startup` for a process that is the worker alone (`alur worker`): what startup
    built is then frozen out of the garbage collector's walks."""
    await on_startup(ctx)
    freeze_startup_heap()


class ArqSettings:
    # Instrumented: counted by name and outcome, logged with the job's (and request's) id.
    functions: ClassVar[list[Any]] = [
        *(instrumented(f) for f in (run_automated_step, check_monitor)),
        # No result kept, so the resend cron may queue a message again as soon as its
        # last try ended (the job skips a message that is no longer `received`).
        func(cast(WorkerCoroutine, instrumented(process_inbound_message)), keep_result=0),
        # No result kept either: the sweep may queue an attempt whose job failed outright.
        func(cast(WorkerCoroutine, instrumented(deliver_webhook)), keep_result=0),
        # A large evidence pack may take minutes; an interrupted one is built again.
        func(
            cast(WorkerCoroutine, instrumented(build_report)),
            timeout=int(BUILD_TIMEOUT.total_seconds()),
            max_tries=3,
            keep_result=0,
        ),
    ]
    cron_jobs: ClassVar[list[CronJob]] = [
        every(deadline_sweep, get_settings().worker.sweep_interval_seconds),
        # Every 10 minutes: opens the day's SOP 10 instance once the satker's day begins.
        every(daily_backup_checks, 600),
        every(schedule_monitors, get_settings().monitors.schedule_interval_seconds),
        every(remind_renewals, 3600),
        # Hourly: a review falls due on a satker's local date, whatever its time zone.
        every(open_sop_reviews, 3600),
        every(resend_waiting_messages, 60),
        # Each runs while there is work; every second picks up what came meanwhile.
        every(relay_outbox, 1),
        every(deliver_webhooks, 1),
        every(sweep_webhook_deliveries, 5),
        every(relay_notifications, 2),
        every(resend_report_jobs, 60),
        every(send_notifications, get_settings().notify.send_interval_seconds),
    ]
    on_startup = on_startup
    on_shutdown = shutdown
    queue_name = QUEUE_NAME
    health_check_interval = HEARTBEAT_TTL_SECONDS // 2
    # A job interrupted by a killed worker is picked up again after this long.
    job_timeout = 300
    # On SIGTERM the worker takes no new job and lets running ones finish, up to the
    # longest a job may run; docker-compose.yml's stop_grace_period is longer still.
    job_completion_wait = job_timeout
    max_tries = 10
