"""SOP 10 every working day: the worker opens the instance and its automated steps check
the real backup files, taking `berhasil` or leaving staf TI a task with the reasons."""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.connections import RedisSettings, create_pool
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.catalog.loader import load_catalog
from services.core.db import session_factory, unit_of_work
from services.core.instances.jobs import QueuedJob
from services.core.settings import Settings
from services.core.shared import Services
from services.core.sipp import service as sipp
from services.core.work import QUEUE_NAME
from services.worker import context as worker_context
from services.worker import tasks as worker_tasks
from services.worker.handlers import default_handlers
from tests.support import TokenFactory
from tests.workers import run_burst

# Tuesday 24 November 2026, 09:00 WIB: a working day, in working hours.
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
DAY = date(2026, 11, 24)
DUMP = (
    b"-- MariaDB dump\nINSERT INTO perkara VALUES (1);\n-- Dump completed on 2026-11-23 23:00:01\n"
)


def _backup(directory: Path, day: date, *, complete: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    content = DUMP if complete else DUMP.rsplit(b"--", 1)[0]
    name = directory / f"SIPP-TAIS-{day:%Y-%m-%d}.zip"
    with zipfile.ZipFile(name, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("sipp.sql", content * 200)


async def _configure(
    client: httpx.AsyncClient, auth_headers: TokenFactory, satker: str, backups: Path
) -> None:
    response = await client.put(
        f"/v1/satkers/{satker}/sipp-config",
        json={"satker_code": "TAIS", "backup_dir": str(backups), "min_size_bytes": 100},
        headers=auth_headers(["admin"], satker=satker),
    )
    assert response.status_code == 200, response.text


async def _run_day(engine: AsyncEngine, settings: Settings) -> list[str]:
    catalog = load_catalog(settings.catalog.path)
    services = Services(roles={role.id: role for role in catalog.roles})
    async with unit_of_work(session_factory(engine)) as session:
        opened = await sipp.open_daily_instances(session, services, NOW)
    assert settings.redis.url is not None
    pool = await create_pool(
        RedisSettings.from_dsn(settings.redis.url), default_queue_name=QUEUE_NAME
    )
    try:
        for a in opened:
            for job in a.jobs:
                queued = QueuedJob(instance_id=a.view.record.id, task_id=job.task_id, job=job.job)
                await queued.send(pool)
    finally:
        await pool.aclose()
    await run_burst(settings)
    return [a.view.record.id for a in opened]


async def _instance(
    client: httpx.AsyncClient, auth_headers: TokenFactory, satker: str, instance_id: str
) -> dict[str, Any]:
    response = await client.get(
        f"/v1/instances/{instance_id}", headers=auth_headers(["staf_ti"], satker=satker)
    )
    return dict(response.json())


@pytest.mark.parametrize(("satker", "complete"), [("pn-bengkulu", True), ("pn-manna", False)])
async def test_daily_check_takes_the_branch_the_files_call_for(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    engine: AsyncEngine,
    settings: Settings,
    tmp_path: Path,
    satker: str,
    complete: bool,
) -> None:
    backups = tmp_path / "backups"
    _backup(backups, DAY, complete=complete)
    await _configure(client, auth_headers, satker, backups)
    opened = await _run_day(engine, settings)
    ours = [i for i in opened if (await _instance(client, auth_headers, satker, i)).get("id")]
    assert len(ours) == 1
    instance = await _instance(client, auth_headers, satker, ours[0])
    done = {t["step_id"]: t for t in instance["tasks"] if t["status"] == "completed"}
    assert done["sinkron_backup_otomatis"]["completed_by"] == "system:worker"
    if complete:
        assert done["cek_keberhasilan"]["outcome"] == "berhasil"
        assert instance["current_steps"] == ["salin_ke_harddisk"]
    else:
        assert done["cek_keberhasilan"]["outcome"] == "tidak_berhasil"
        assert "dump_incomplete" in done["cek_keberhasilan"]["note"]
        assert instance["current_steps"] == ["sinkron_backup_manual"]
        inbox = await client.get("/v1/tasks", headers=auth_headers(["staf_ti"], satker=satker))
        assert ours[0] in [task["instance_id"] for task in inbox.json()["items"]]

    checks = await client.get(
        "/v1/backup-checks",
        params={"satker": satker},
        headers=auth_headers(["staf_ti"], satker=satker),
    )
    (check,) = checks.json()["items"]
    assert (check["ok"], check["instance_id"], check["day"]) == (complete, ours[0], "2026-11-24")

    # The next sweep of the same day opens nothing new.
    assert await _run_day(engine, settings) == []


async def _first_step_after_the_worker(
    client: httpx.AsyncClient, auth_headers: TokenFactory, settings: Settings, title: str
) -> dict[str, Any]:
    """Start a SOP 10 instance by hand, let a real worker run, return its open task."""
    started = await client.post(
        "/v1/instances",
        json={"sop": "monitoring-sinkronisasi-backup-sipp", "title": title},
        headers=auth_headers(["staf_ti", "admin"], satker="pn-tais"),
    )
    await run_burst(settings)
    instance = await _instance(client, auth_headers, "pn-tais", started.json()["id"])
    (task,) = [t for t in instance["tasks"] if t["status"] == "open"]
    return dict(task)


async def test_no_configuration_flags_the_step_for_a_person(
    client: httpx.AsyncClient, auth_headers: TokenFactory, engine: AsyncEngine, settings: Settings
) -> None:
    task = await _first_step_after_the_worker(client, auth_headers, settings, "Manual")
    assert task["step_id"] == "sinkron_backup_otomatis"
    assert "no SIPP check configuration" in (task["flag"] or "")


async def test_a_failing_step_is_retried_with_backoff_then_flagged(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unexpected error is retried (5 s, 20 s, 80 s... apart; no wait here), and after
    the last try the task stays open, flagged with the error for a person: never lost."""
    tries: list[str] = []

    async def broken(*args: Any, **kwargs: Any) -> Any:
        tries.append("try")
        raise RuntimeError("disk on fire")

    delays: list[int] = []
    backoff = worker_tasks.backoff_seconds

    def no_wait(job_try: int) -> int:
        delays.append(backoff(job_try))
        return 0

    monkeypatch.setattr(
        worker_context,
        "default_handlers",
        lambda: {**default_handlers(), "sipp_scheduled_run": broken},
    )
    monkeypatch.setattr(worker_tasks, "backoff_seconds", no_wait)
    task = await _first_step_after_the_worker(client, auth_headers, settings, "Broken")
    assert len(tries) == settings.worker.max_tries
    assert delays == [5, 20, 80, 320][: settings.worker.max_tries - 1]
    assert task["step_id"] == "sinkron_backup_otomatis"
    assert task["flag"] == (
        f"sipp_scheduled_run failed {settings.worker.max_tries} times; "
        "last error: RuntimeError: disk on fire"
    )
