"""The one place that lists every job and cron job the workers run.

The Redis connection is given by `alur worker` (from settings or the embedded Redis).

Cron jobs carry `unique=True` (arq's default) so that with N worker replicas each
run happens once: arq derives the job id from the cron's name and scheduled time.
"""

from __future__ import annotations

import os
import socket
from typing import Any, ClassVar

from arq import cron
from arq.cron import CronJob

from services.worker.heartbeat import HEARTBEAT_TTL_SECONDS, beat


async def startup(ctx: dict[str, Any]) -> None:
    ctx["worker_id"] = f"{socket.gethostname()}:{os.getpid()}"
    await beat(ctx)


class WorkerSettings:
    functions: ClassVar[list[Any]] = []
    cron_jobs: ClassVar[list[CronJob]] = [
        cron(beat, second=set(range(0, 60, 15)), run_at_startup=False, unique=False),
    ]
    on_startup = startup
    queue_name = "alur:queue"
    health_check_interval = HEARTBEAT_TTL_SECONDS // 2
