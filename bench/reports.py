"""Reports at the size of a busy court's year, on PostgreSQL.

Targets (issue 13): the SOP performance report for one satker-year with 100,000
completed tasks in <= 1 s; the evidence pack of a quarter with 1,000 instances and 1 GB
of files built in bounded memory (peak RSS reported).

What is measured
----------------
1. `services.core.reports.service.sop_performance`, as `GET /v1/reports/sop-performance`
   calls it (the task query, the late tasks' comments, the per-step figures with their
   working-time durations in the satker's calendar), for satker `pn-tais` and the year
   2026, `--runs` times after a warm-up; median and max, and the share spent in the query.
   100,000 tasks (`--tasks`) spread over the year's working days across all twelve SOPs
   and their steps, each completed 0-8 hours after opening against a 4-hour due date (so
   about half are late), 2,000 open ones; 20,000 instances. Another satker holds as many
   tasks again, which the report must leave out (the index `ix_task_satker_opened`).
2. `services.core.reports.pack.build` for `--pack-instances` completed instances (default
   1,000), each with three tasks done and one evidence file of
   `--file-mib` MiB (default 1: 1 GB in all) of random bytes in a local file store:
   wall time, the pack's size, and the process' resident memory before the build and
   the most it reached during it (sampled every 20 ms), so the growth shows the memory
   the build needs whatever the pack's size.
   `--skip-pack` leaves it out.

Everything runs in a scratch database (`alur_bench_<random>`) and a scratch data
directory, both removed at the end. Run it with `make bench`, or::

    .venv/bin/python bench/reports.py                       # 100,000 tasks, 1 GB pack
    .venv/bin/python bench/reports.py --quick               # 10,000 tasks, 100 MB pack

The figures are printed and written as JSON to `--out` (default `.alur/bench/reports.json`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from scratch import Database, cancel_on_sigterm, in_scratch_database, run_main

from services.core import migrate
from services.core.audit.hashchain import GENESIS_HASH
from services.core.catalog.loader import load_catalog
from services.core.catalog.service import sync_catalog
from services.core.db import create_engine, session_factory, unit_of_work
from services.core.engine.definition import Catalog
from services.core.files.storage import FileStore
from services.core.reports import pack
from services.core.reports import service as reports
from services.core.reports.periods import parse
from services.core.runtime import freeze_startup_heap
from services.core.settings import get_settings
from services.core.shared import Services

ROOT = Path(__file__).resolve().parents[1]
SATKER, OTHER = "pn-tais", "pn-bench-lain"
TARGET_REPORT_S = 1.0
NOW = datetime(2027, 1, 4, 2, tzinfo=UTC)

SEED_INSTANCES = """
INSERT INTO instance (id, satker_id, sop_code, sop_version, title, context, status, version,
    started_at, ended_at, created_by, event_count, head_hash, escalation_level)
SELECT md5($1::text || 'i' || g)::uuid::text, $1,
    ($2::text[])[(g - 1) % cardinality($2::text[]) + 1], 1, 'bench ' || g, '{}'::jsonb, $3::text, 1,
    $4::timestamptz + (g * $5::int) * interval '1 second',
    CASE WHEN $3::text = 'completed'
         THEN $4::timestamptz + (g * $5::int + 3600) * interval '1 second' END,
    'bench', 0, $6, 0
FROM generate_series(1, $7::int) AS g
"""

# Task g: step (g - 1) % steps of the flattened catalog, instance (g - 1) % instances.
SEED_TASKS = """
INSERT INTO task (id, instance_id, satker_id, sop_code, step_id, lane, kind, status,
    opened_at, due_at, completed_at, evidence, escalation_level)
SELECT md5($1::text || 't' || g)::uuid::text,
    md5($1::text || 'i' || ((g - 1) % $6::int + 1))::uuid::text, $1,
    ($2::text[])[(g - 1) % cardinality($2::text[]) + 1],
    ($3::text[])[(g - 1) % cardinality($3::text[]) + 1],
    ($4::text[])[(g - 1) % cardinality($4::text[]) + 1],
    'task', CASE WHEN g % 50 = 0 THEN 'open' ELSE 'completed' END,
    opened, opened + interval '4 hours',
    CASE WHEN g % 50 = 0 THEN NULL ELSE opened + ((g * 7919) % 28800) * interval '1 second' END,
    '[]'::jsonb, CASE WHEN g % 7 = 0 THEN 1 ELSE 0 END
FROM generate_series(1, $5::int) AS g,
    LATERAL (SELECT $7::timestamptz + (g * $8::int) * interval '1 second' AS opened) AS t
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("ALUR_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test"),
    )
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pack-instances", type=int, default=1_000)
    parser.add_argument("--file-mib", type=float, default=1.0)
    parser.add_argument("--skip-pack", action="store_true")
    parser.add_argument("--quick", action="store_true", help="10,000 tasks, a 100 MB pack")
    parser.add_argument("--out", type=Path, default=ROOT / ".alur" / "bench" / "reports.json")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.pack_instances = 10_000, 100
    return args


def _steps(catalog: Catalog) -> tuple[list[str], list[str], list[str]]:
    codes, steps, lanes = [], [], []
    for sop in catalog.sops:
        for step in sop.steps:
            codes.append(sop.code)
            steps.append(step.id)
            lanes.append(step.lane)
    return codes, steps, lanes


async def seed_year(database: Database, catalog: Catalog, tasks: int) -> None:
    codes, steps, lanes = _steps(catalog)
    instances = max(1, tasks // 5)
    # A year of openings: 2026-01-02 00:00 UTC plus up to 360 days.
    spacing = max(1, 360 * 86400 // tasks)
    start = datetime(2026, 1, 2, tzinfo=UTC)
    connection = await asyncpg.connect(database.dsn)
    try:
        await connection.execute(
            "INSERT INTO satker (id, name, timezone, created_at) VALUES ($1, $2, $3, now()) "
            "ON CONFLICT (id) DO NOTHING",
            OTHER, "Pengadilan Negeri Lain", "Asia/Jakarta",
        )  # fmt: skip
        for satker in (SATKER, OTHER):
            await connection.execute(
                SEED_INSTANCES, satker, sorted({s.code for s in catalog.sops}), "active", start,
                spacing * 5, GENESIS_HASH, instances,
            )  # fmt: skip
            await connection.execute(
                SEED_TASKS, satker, codes, steps, lanes, tasks, instances, start, spacing
            )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def time_report(catalog: Catalog, runs: int) -> dict[str, Any]:
    engine = create_engine(get_settings())
    services = Services(roles={role.id: role for role in catalog.roles})
    sessions = session_factory(engine)
    period = parse("2026")
    walls: list[float] = []
    tasks = 0
    try:
        for run in range(runs + 1):
            async with unit_of_work(sessions, read_only=True) as session:
                directory = await services.directory(session, SATKER)
                began = time.perf_counter()
                report = await reports.sop_performance(
                    session, services, catalog, directory.get(SATKER), period, sop=None, now=NOW
                )
                elapsed = time.perf_counter() - began
            tasks = sum(sop.figures.tasks for sop in report.sops)
            if run:  # the first run fills the caches (calendar, statement cache)
                walls.append(elapsed)
    finally:
        await engine.dispose()
    return {
        "tasks_counted": tasks,
        "median_s": round(statistics.median(walls), 3),
        "max_s": round(max(walls), 3),
        "runs": [round(w, 3) for w in walls],
        "target_s": TARGET_REPORT_S,
    }


async def seed_pack(
    database: Database, catalog: Catalog, store: FileStore, instances: int, file_bytes: int
) -> int:
    """Completed instances in 2026-Q4 with 3 tasks and one evidence file each."""
    wifi = next(sop for sop in catalog.sops if sop.code == "wifi-internet")
    connection = await asyncpg.connect(database.dsn)
    total = 0
    try:
        start = datetime(2026, 10, 5, 1, tzinfo=UTC)
        await connection.execute(
            SEED_INSTANCES.replace("'bench ' || g", "'pack ' || g").replace("'i' || g", "'p' || g"),
            SATKER, ["wifi-internet"], "completed", start, 3600, GENESIS_HASH, instances,
        )  # fmt: skip
        # Three tasks each, done on time: the record's table of steps and durations.
        await connection.execute(
            """
            INSERT INTO task (id, instance_id, satker_id, sop_code, step_id, lane, kind,
                status, opened_at, due_at, completed_at, completed_by, evidence,
                escalation_level)
            SELECT md5(i.id || n)::uuid::text, i.id, i.satker_id, i.sop_code, s.step, s.lane,
                'task', 'completed', i.started_at + n * interval '20 minutes',
                i.started_at + n * interval '20 minutes' + interval '1 hour',
                i.started_at + n * interval '20 minutes' + interval '15 minutes', 'bench',
                '[]'::jsonb, 0
            FROM instance i, generate_series(0, 2) AS n,
                LATERAL (SELECT ($2::text[])[n + 1] AS step, ($3::text[])[n + 1] AS lane) AS s
            WHERE i.satker_id = $1 AND i.status = 'completed'
            """,
            SATKER, [step.id for step in wifi.steps[:3]], [step.lane for step in wifi.steps[:3]],
        )  # fmt: skip
        scratch = Path(tempfile.mkdtemp(dir=get_settings().data_dir))
        rows = []
        for number in range(1, instances + 1):
            content = b"%PDF-1.4\n" + os.urandom(file_bytes - 9)
            digest = hashlib.sha256(content).hexdigest()
            source = scratch / "f"
            source.write_bytes(content)
            await store.put(digest, source)
            instance = await connection.fetchval(
                "SELECT md5($1::text || 'p' || $2::int)::uuid::text", SATKER, number
            )
            rows.append((secrets.token_hex(16)[:36], instance, SATKER, f"bukti-{number}.pdf",
                         "application/pdf", len(content), digest, "bench", start))  # fmt: skip
            total += len(content)
        shutil.rmtree(scratch)
        await connection.executemany(
            "INSERT INTO evidence_file (id, instance_id, satker_id, name, media_type, size, "
            "sha256, uploaded_by, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            rows,
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return total


def _rss_mib() -> float:
    """The process' resident memory now (Linux), in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


class RssSampler:
    """The largest resident memory seen every 20 ms while it runs (a thread)."""

    def __init__(self) -> None:
        self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mib())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def time_pack(catalog: Catalog, store: FileStore, file_total: int) -> dict[str, Any]:
    engine = create_engine(get_settings())
    services = Services(roles={role.id: role for role in catalog.roles})
    out = get_settings().data_dir / "pack.zip"
    try:
        async with unit_of_work(session_factory(engine), read_only=True) as session:
            directory = await services.directory(session, SATKER)
            before = _rss_mib()
            began, cpu = time.perf_counter(), time.process_time()
            with RssSampler() as sampler:
                summary = await pack.build(
                    session, services, store, directory.get(SATKER), parse("2026-Q4"), out,
                    now=NOW,
                )  # fmt: skip
            wall, used = time.perf_counter() - began, time.process_time() - cpu
    finally:
        await engine.dispose()
    after = sampler.peak
    out.unlink()
    return {
        "instances": summary.instances,
        "files": summary.files,
        "file_bytes": file_total,
        "pack_bytes": summary.size,
        "wall_s": round(wall, 1),
        "cpu_s": round(used, 1),
        "rss_before_mib": round(before, 1),
        "rss_peak_during_mib": round(after, 1),
        "rss_growth_mib": round(after - before, 1),
    }


async def run(args: argparse.Namespace, database: Database) -> dict[str, Any]:
    await asyncio.to_thread(migrate.upgrade)
    catalog = load_catalog(ROOT / "sop_catalog")
    engine = create_engine(get_settings())
    async with unit_of_work(session_factory(engine)) as session:
        await sync_catalog(session, catalog, datetime.now(UTC))
    await engine.dispose()
    freeze_startup_heap()
    began = time.perf_counter()
    await seed_year(database, catalog, args.tasks)
    print(f"seeded {args.tasks:,} tasks per satker in {time.perf_counter() - began:.1f} s")
    document: dict[str, Any] = {"machine": os.uname().nodename, "cpus": os.cpu_count()}
    document["sop_performance"] = await time_report(catalog, args.runs)
    figures = document["sop_performance"]
    print(f"sop-performance, {figures['tasks_counted']:,} tasks: median {figures['median_s']} s, "
          f"max {figures['max_s']} s (target <= {TARGET_REPORT_S} s)")  # fmt: skip
    if not args.skip_pack:
        store = FileStore.from_settings(get_settings())
        file_bytes = int(args.file_mib * 1024 * 1024)
        total = await seed_pack(database, catalog, store, args.pack_instances, file_bytes)
        document["evidence_pack"] = await time_pack(catalog, store, total)
        p = document["evidence_pack"]
        print(f"evidence pack, {p['instances']} instances, {p['file_bytes'] / 2**20:,.0f} MiB "
              f"of files: {p['wall_s']} s ({p['cpu_s']} s CPU), pack "
              f"{p['pack_bytes'] / 2**20:,.0f} MiB, RSS {p['rss_before_mib']} MiB before, "
              f"{p['rss_peak_during_mib']} MiB at most while building")  # fmt: skip
    return document


async def main() -> int:
    cancel_on_sigterm()
    args = parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="alur-bench-reports-"))
    try:
        document = await in_scratch_database(
            args.postgres_url, lambda database: run(args, database), ALUR_DATA_DIR=str(data_dir)
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    run_main(main)
