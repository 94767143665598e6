"""`/metrics`: HTTP by route template, gauges read from the database at scrape time, and
the workers' figures read from Redis, in a format Prometheus' own parser accepts."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio
import sqlalchemy as sa
from arq import Retry
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from services.core.db import session_factory, unit_of_work
from services.core.monitors.models import MonitorCheckRecord, MonitorRecord
from services.core.settings import MetricsSettings, Settings
from services.core.sipp.models import BackupCheckRecord, SippConfigRecord
from services.core.telemetry.worker_stats import HEARTBEAT_KEY
from services.worker.instrumentation import instrumented
from tests.support import TokenFactory, serving

# Monday 2 November 2026, 08:00 WIB: long past, so the task it opens is overdue now.
STARTED = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, metric: str, /, **labels: str) -> float | None:
    return found.get((metric, frozenset(labels.items())))


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


@pytest.fixture
async def fixtures_in_database(engine: AsyncEngine) -> AsyncIterator[dict[str, Any]]:
    """A down monitor with a certificate and two days of backup checks, committed (the
    app reads them through its own connections) and removed afterwards."""
    now = datetime.now(UTC)
    monitor_id = str(uuid.uuid4())
    satker = "pt-bengkulu"  # no other test checks this satker's backups
    success, failure = now - timedelta(days=1), now - timedelta(hours=1)
    async with unit_of_work(session_factory(engine)) as session:
        session.add(
            MonitorRecord(
                id=monitor_id,
                satker_id=satker,
                name="Situs metrik",
                url="https://metrics.invalid/",
                status="down",
                # Never due: the monitor scheduler of other tests must leave it alone.
                next_check_at=now + timedelta(days=3650),
                certificate_expires_at=now + timedelta(days=10),
                created_at=now,
            )
        )
        for day, checked_at, ok in [
            (date.today() - timedelta(days=1), success, True),
            (date.today(), failure, False),
        ]:
            session.add(BackupCheckRecord(satker_id=satker, day=day, checked_at=checked_at, ok=ok))
    async with unit_of_work(session_factory(engine)) as session:
        session.add(
            MonitorCheckRecord(monitor_id=monitor_id, checked_at=now, up=False, latency_ms=250.0)
        )
    yield {"monitor": monitor_id, "satker": satker, "success": success, "failure": failure}
    async with unit_of_work(session_factory(engine)) as session:
        await session.execute(
            sa.delete(MonitorCheckRecord).where(col(MonitorCheckRecord.monitor_id) == monitor_id)
        )
        await session.execute(sa.delete(MonitorRecord).where(col(MonitorRecord.id) == monitor_id))
        await session.execute(
            sa.delete(BackupCheckRecord).where(col(BackupCheckRecord.satker_id) == satker)
        )


async def test_http_metrics_use_route_templates(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    headers = auth_headers(["pengguna", "admin"])
    started = await client.post(
        "/v1/instances",
        json={"sop": "wifi-internet", "title": "Metrik", "started_at": STARTED.isoformat()},
        headers=headers,
    )
    instance_id = started.json()["id"]
    for _ in range(2):
        assert (await client.get(f"/v1/instances/{instance_id}", headers=headers)).is_success
    assert (await client.get(f"/nowhere/{instance_id}")).status_code == 404

    found = await scrape(client)
    requests = "alur_http_requests_total"
    by_template = {"method": "GET", "route": "/v1/instances/{instance_id}", "status": "200"}
    assert (value(found, requests, **by_template) or 0) >= 2
    assert (value(found, requests, method="GET", route="unmatched", status="404") or 0) >= 1
    # No label carries a raw path: ids would make one series per instance.
    assert not any(instance_id in str(labels) for _, labels in found)
    count = value(found, "alur_http_request_duration_seconds_count", **by_template)
    inf = value(found, "alur_http_request_duration_seconds_bucket", **by_template, le="+Inf")
    assert count == inf
    assert (count or 0) >= 2


async def test_database_gauges(
    client: httpx.AsyncClient, auth_headers: TokenFactory, fixtures_in_database: dict[str, Any]
) -> None:
    started = await client.post(
        "/v1/instances",
        json={"sop": "wifi-internet", "title": "Terlambat", "started_at": STARTED.isoformat()},
        headers=auth_headers(["pengguna", "admin"]),
    )
    assert started.status_code == 201, started.text
    lane = started.json()["tasks"][0]["lane"]

    found = await scrape(client)
    assert (value(found, "alur_instances", sop="wifi-internet", state="active") or 0) >= 1
    open_tasks = value(found, "alur_tasks_open", sop="wifi-internet", lane=lane) or 0
    overdue = value(found, "alur_tasks_overdue", sop="wifi-internet", lane=lane) or 0
    assert open_tasks >= overdue >= 1
    # Every start writes audit events to the outbox; nothing publishes them in this test.
    assert (value(found, "alur_outbox_unpublished") or 0) >= 1
    assert (value(found, "alur_outbox_lag_seconds") or 0) > 0

    satker = fixtures_in_database["satker"]
    assert value(found, "alur_monitors", satker=satker, status="down") == 1
    days_left = value(
        found,
        "alur_monitor_certificate_days_left",
        monitor=fixtures_in_database["monitor"],
        name="Situs metrik",
        satker=satker,
    )
    assert 9.9 < (days_left or 0) <= 10
    latency = value(
        found,
        "alur_monitor_latency_seconds",
        monitor=fixtures_in_database["monitor"],
        name="Situs metrik",
        satker=satker,
    )
    assert latency == pytest.approx(0.25)
    last_success = value(found, "alur_backup_check_last_success_timestamp_seconds", satker=satker)
    assert last_success == pytest.approx(fixtures_in_database["success"].timestamp(), abs=1)
    last_check = value(found, "alur_backup_check_last_timestamp_seconds", satker=satker)
    assert last_check == pytest.approx(fixtures_in_database["failure"].timestamp(), abs=1)
    assert value(found, "alur_backup_check_last_ok", satker=satker) == 0
    assert value(found, "alur_metrics_source_up", source="database") == 1


async def test_missed_backup_days_count_the_satkers_working_days(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    satker = "pt-bengkulu"  # no other test configures this satker's SIPP check
    now = datetime.now(UTC)
    async with unit_of_work(session_factory(engine)) as session:
        session.add(
            SippConfigRecord(satker_id=satker, config={}, updated_at=now - timedelta(days=40))
        )
    try:
        # Never a success since it was configured: the month looked back over holds at
        # least ten working days, whatever its holidays.
        missed = value(await scrape(client), "alur_backup_check_working_days_missed", satker=satker)
        assert missed is not None
        assert 10 <= missed <= 31
        async with unit_of_work(session_factory(engine)) as session:
            session.add(
                BackupCheckRecord(satker_id=satker, day=date.today(), checked_at=now, ok=True)
            )
        missed = value(await scrape(client), "alur_backup_check_working_days_missed", satker=satker)
        assert missed == 0
    finally:
        async with unit_of_work(session_factory(engine)) as session:
            await session.execute(
                sa.delete(BackupCheckRecord).where(col(BackupCheckRecord.satker_id) == satker)
            )
            await session.execute(
                sa.delete(SippConfigRecord).where(col(SippConfigRecord.satker_id) == satker)
            )


def _job(name: str, behaviour: str) -> Any:
    async def job(ctx: dict[str, Any]) -> str:
        if behaviour == "retry":
            raise Retry(defer=1)
        if behaviour == "fail":
            raise ValueError("broken on purpose")
        return "done"

    job.__name__ = job.__qualname__ = name
    return instrumented(job)


async def test_worker_metrics_from_redis(client: httpx.AsyncClient, redis_url: str) -> None:
    """Jobs record their outcome and duration in Redis; the API's scrape shows them."""
    name = f"probe_{uuid.uuid4().hex[:8]}"
    store = redis.asyncio.Redis.from_url(redis_url)
    ctx = {"redis": store, "job_id": "probe", "job_try": 1}
    try:
        for _ in range(2):
            assert await _job(name, "ok")(ctx) == "done"
        with pytest.raises(Retry):
            await _job(name, "retry")(ctx)
        with pytest.raises(ValueError, match="on purpose"):
            await _job(name, "fail")(ctx)
        await store.hset(HEARTBEAT_KEY, "metrics-test-worker", f"{time.time() - 3:.3f}")

        found = await scrape(client)
    finally:
        await store.hdel(HEARTBEAT_KEY, "metrics-test-worker")
        await store.aclose()
    jobs = "alur_worker_jobs_total"
    assert value(found, jobs, function=name, outcome="success") == 2
    assert value(found, jobs, function=name, outcome="retry") == 1
    assert value(found, jobs, function=name, outcome="failure") == 1
    assert value(found, "alur_worker_job_duration_seconds_count", function=name) == 4
    assert value(found, "alur_worker_job_duration_seconds_bucket", function=name, le="+Inf") == 4
    # Each of these runs took far less than the first bucket's 10 ms.
    assert value(found, "alur_worker_job_duration_seconds_bucket", function=name, le="0.01") == 4
    assert (value(found, "alur_worker_heartbeat_age_seconds") or 99) < 60
    assert (value(found, "alur_workers") or 0) >= 1
    assert value(found, "alur_queue_depth") is not None
    assert value(found, "alur_metrics_source_up", source="redis") == 1


async def test_metrics_token(migrated: Settings) -> None:
    guarded = migrated.model_copy(
        update={"metrics": MetricsSettings(token=SecretStr("scrape-me-0123456789"))}
    )
    async with serving(guarded) as (_, http):
        missing = await http.get("/metrics")
        assert missing.status_code == 401
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["code"] == "token_missing"
        assert missing.headers["www-authenticate"].startswith("Bearer")

        wrong = await http.get("/metrics", headers={"Authorization": "Bearer guess"})
        assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_token")

        right = await http.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"})
        assert right.status_code == 200
        assert "alur_http_requests_total" in right.text
