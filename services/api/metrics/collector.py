"""One scrape: the app's HTTP metrics plus families computed now from the database and
from what the workers keep in Redis.

The scrape-time families are built fresh for each request in a registry of their own,
so concurrent scrapes share nothing. A source that fails or is slow leaves its
families out and sets `alur_metrics_source_up{source=...}` to 0; the rest is still
served, which is what lets Prometheus alert on a database that is down.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Coroutine, Iterable, Iterator, Mapping
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from services.api.context import AppContext
from services.api.metrics.http import HttpMetrics
from services.core.db import utcnow
from services.core.sipp import service as sipp
from services.core.telemetry import worker_stats
from services.core.telemetry.repository import Snapshot, snapshot

log = structlog.get_logger(__name__)

SOURCE_TIMEOUT_SECONDS = 2.0


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


async def scrape(context: AppContext, http: HttpMetrics) -> bytes:
    database, redis = await asyncio.gather(
        _bounded("database", _database_families(context)),
        _bounded("redis", _worker_families(context)),
    )
    up = GaugeMetricFamily(
        "alur_metrics_source_up",
        "1 when this scrape could read the source (database, redis), else 0.",
        labels=["source"],
    )
    up.add_metric(["database"], 0 if database is None else 1)
    up.add_metric(["redis"], 0 if redis is None else 1)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([up, *(database or []), *(redis or [])]))
    return generate_latest(http.registry) + generate_latest(registry)


async def _bounded(source: str, families: Coroutine[Any, Any, list[Metric]]) -> list[Metric] | None:
    try:
        return await asyncio.wait_for(families, SOURCE_TIMEOUT_SECONDS)
    except Exception as exc:
        log.warning("metrics source failed", source=source, error=f"{type(exc).__name__}: {exc}")
        return None


async def _database_families(context: AppContext) -> list[Metric]:
    now = utcnow()
    async with context.sessions() as session:
        data = await snapshot(session, now)
        missed = await sipp.missed_checks(session, context.services, now)
    return database_families(data, missed)


def database_families(data: Snapshot, missed_backup_days: Mapping[str, int]) -> list[Metric]:
    instances = GaugeMetricFamily(
        "alur_instances", "Instances by SOP and state.", labels=["sop", "state"]
    )
    for sop, state, count in data.instances:
        instances.add_metric([sop, state], count)

    open_tasks = GaugeMetricFamily(
        "alur_tasks_open", "Open tasks by SOP and lane.", labels=["sop", "lane"]
    )
    overdue = GaugeMetricFamily(
        "alur_tasks_overdue",
        "Open tasks past their due time, by SOP and lane.",
        labels=["sop", "lane"],
    )
    for load in data.tasks:
        open_tasks.add_metric([load.sop, load.lane], load.open)
        overdue.add_metric([load.sop, load.lane], load.overdue)

    escalated = GaugeMetricFamily(
        "alur_tasks_escalated",
        "Open tasks by escalation level (1 = escalated once along reports_to).",
        labels=["level"],
    )
    for level, count in data.escalations:
        escalated.add_metric([str(level)], count)

    monitors = GaugeMetricFamily(
        "alur_monitors",
        "Active website monitors by satker and status (up, down, unknown, maintenance).",
        labels=["satker", "status"],
    )
    for satker, status, count in data.monitors:
        monitors.add_metric([satker, status], count)

    certificates = GaugeMetricFamily(
        "alur_monitor_certificate_days_left",
        "Days until the TLS certificate of a monitored site expires (negative: expired).",
        labels=["monitor", "name", "satker"],
    )
    for cert in data.certificates:
        certificates.add_metric([cert.monitor_id, cert.name, cert.satker], cert.days_left)

    latency = GaugeMetricFamily(
        "alur_monitor_latency_seconds",
        "Response time of the newest check of a monitored site.",
        labels=["monitor", "name", "satker"],
    )
    for monitor_id, name, satker, seconds in data.latencies:
        latency.add_metric([monitor_id, name, satker], seconds)

    last_success = GaugeMetricFamily(
        "alur_backup_check_last_success_timestamp_seconds",
        "Unix time of the last successful SIPP backup check, per satker.",
        labels=["satker"],
    )
    last_check = GaugeMetricFamily(
        "alur_backup_check_last_timestamp_seconds",
        "Unix time of the last SIPP backup check, successful or not, per satker.",
        labels=["satker"],
    )
    last_ok = GaugeMetricFamily(
        "alur_backup_check_last_ok",
        "1 when the newest SIPP backup check of the satker succeeded, else 0.",
        labels=["satker"],
    )
    for backup in data.backups:
        last_check.add_metric([backup.satker], backup.last_checked_at.timestamp())
        if backup.last_success_at is not None:
            last_success.add_metric([backup.satker], backup.last_success_at.timestamp())
        newest_ok = backup.last_success_at == backup.last_checked_at
        last_ok.add_metric([backup.satker], 1 if newest_ok else 0)

    missed = GaugeMetricFamily(
        "alur_backup_check_working_days_missed",
        "Working days of the satker's own calendar (holidays and local days off known) "
        "that opened over 2 h ago without a successful SIPP backup check since.",
        labels=["satker"],
    )
    for satker, days in sorted(missed_backup_days.items()):
        missed.add_metric([satker], days)

    deliveries = GaugeMetricFamily(
        "alur_webhook_deliveries",
        "Webhook deliveries by status (pending, succeeded, failed, dead).",
        labels=["status"],
    )
    for status, count in data.webhook_deliveries.items():
        deliveries.add_metric([status], count)

    unstaffed = CounterMetricFamily(
        "alur_escalations_unstaffed",
        "Escalations and notifications that reached nobody: no one held the role in the "
        "satker, nor acted in it (`role.unstaffed` findings), by satker and role.",
        labels=["satker", "role"],
    )
    for satker, role, count in data.unstaffed:
        unstaffed.add_metric([satker, role], count)

    notifications = GaugeMetricFamily(
        "alur_notifications",
        "Messages to people by channel and status (queued, sent, failed, skipped).",
        labels=["channel", "status"],
    )
    for (channel, status), count in data.notifications.items():
        notifications.add_metric([channel, status], count)

    return [
        instances,
        open_tasks,
        overdue,
        escalated,
        GaugeMetricFamily(
            "alur_outbox_unpublished",
            "Outbox rows not yet published.",
            value=data.outbox_unpublished,
        ),
        GaugeMetricFamily(
            "alur_outbox_lag_seconds",
            "Age of the oldest unpublished outbox row (0 when none waits).",
            value=data.outbox_lag_seconds,
        ),
        monitors,
        certificates,
        latency,
        last_success,
        last_check,
        last_ok,
        missed,
        deliveries,
        unstaffed,
        notifications,
    ]


async def _worker_families(context: AppContext) -> list[Metric]:
    redis = context.redis
    stats, ages, depth = await asyncio.gather(
        worker_stats.read_job_stats(redis),
        worker_stats.heartbeat_ages(redis, time.time()),
        worker_stats.queue_depth(redis),
    )
    return worker_families(stats, ages, depth, context.settings.health.worker_stale_seconds)


def _bucket_label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


def worker_families(
    stats: list[worker_stats.JobStats], ages: list[float], depth: int, stale_seconds: int
) -> list[Metric]:
    # The job's name is the `function` label, as in the worker's log lines: a `job` label
    # would clash with the scrape job's, which Prometheus keeps (renaming ours exported_job).
    jobs = CounterMetricFamily(
        "alur_worker_jobs",
        "Worker job runs by function and outcome (success, retry, failure, cancelled), "
        "across all workers.",
        labels=["function", "outcome"],
    )
    durations = HistogramMetricFamily(
        "alur_worker_job_duration_seconds",
        "Time a worker job run took, by function, across all workers.",
        labels=["function"],
    )
    for job in stats:
        for outcome, count in sorted(job.outcomes.items()):
            jobs.add_metric([job.job, outcome], count)
        durations.add_metric(
            [job.job],
            [(_bucket_label(bound), count) for bound, count in job.buckets],
            job.sum_seconds,
        )
    return [
        jobs,
        durations,
        GaugeMetricFamily(
            "alur_worker_heartbeat_age_seconds",
            "Seconds since the newest worker heartbeat (+Inf when no worker beat recently).",
            value=ages[0] if ages else math.inf,
        ),
        GaugeMetricFamily(
            "alur_workers",
            "Workers whose heartbeat is fresher than ALUR_HEALTH__WORKER_STALE_SECONDS.",
            value=sum(1 for age in ages if age <= stale_seconds),
        ),
        GaugeMetricFamily(
            "alur_queue_depth",
            "Jobs waiting in the worker queue (deferred retries too).",
            value=depth,
        ),
    ]
