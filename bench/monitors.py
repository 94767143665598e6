"""Scheduling lag of 1,000 website monitors checked every 60 s by the real worker.

Target (issue): with 1,000 monitors at a 60 s interval, p99 of the scheduling lag <= 2 s.

What is measured
----------------
The lag of a check is `checked_at - scheduled_at` of its `monitor_check` row: from the
moment the slot was due (the monitor's `next_check_at`) to the moment the `check_monitor`
job began (it stamps `checked_at` before fetching the page). It adds up the dispatch
cron's period (`schedule_monitors` every `--schedule-interval` s claims the due slots and
enqueues one job each), arq's polling, the queue and the job's own start. The HTTP fetch
itself is not in it; its latency is reported beside it.

For each `--workers` entry, one run:

1. A fast local HTTP server (a subprocess: this file with `--serve`, an asyncio server
   answering every request `200 ok` with keep-alive) stands in for the court's sites.
2. The worker processes (`.venv/bin/alur worker`, the real arq worker with every cron job of
   `services.worker.settings`) start; once each has written its heartbeat to Redis, the
   `--monitors` monitor rows are inserted (interval 60 s, certificate and domain checks off,
   first slots spread evenly over the first minute, starting 2 s later).
3. After `--seconds` from the first slot, the workers are stopped (SIGTERM, as a
   deployment would) and the `monitor_check` rows are read back.

Per run it reports: the number of checks, the lag's p50/p95/p99/max, the checks per
monitor (min/mean/max), and the missed slots. A slot is expected when it falls at least
`--grace` seconds before the workers were stopped (a slot due in the last moments may
still be queued); with first slots spread over [0, 60) s, a run of S seconds expects
`floor((S - grace - offset) / 60) + 1` slots of each monitor, e.g. 2 or 3 (mean 2.33) for
150 s. A missed slot is an expected one with no check scheduled at it; checks of a slot
run twice are counted too (each slot must run once). The max lag of each 10 s of slots
tells a steady lag from stalls. The CPU the workers and the whole machine used is shown,
since a 2-core machine is shared by the workers, PostgreSQL, Redis and the HTTP server
(and, on a shared machine, other tenants: a busy machine shows in the tail).

The workers log JSON lines (`ALUR_LOG__JSON_FORMAT=true`) at WARNING (`--log-level`), as
a deployment would: the console renderer formats a failing job's traceback with rich,
locals included, which blocks the worker's event loop (every check waits) for seconds.

Everything runs in a scratch database (`alur_bench_<random>`) created next to
`--postgres-url`, migrated with `services.core.migrate.upgrade()` (and the catalog loaded,
as the API does) and dropped at the end, and in a Redis database of its own (`--redis-url`,
default `/14`), emptied before each run and at the end. The workers' logs go to
`<out dir>/monitors-worker-<run>-<n>.log`.

Run it with `make bench` (1 then 2 workers, 75 s each: about 3 minutes), or::

    .venv/bin/python bench/monitors.py --seconds 150 --workers 1,2
    .venv/bin/python bench/monitors.py --monitors 2000 --schedule-interval 2 --workers 2

The figures are printed as a table and written as JSON to `--out` (default
`.alur/bench/monitors.json`). The exit status is 0 whether or not the target is met (a
benchmark is not a test); it is 1 only when the run itself failed (e.g. no check ran).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis
from scratch import Database, admin, scratch_database

from services.core import migrate
from services.core.catalog.loader import load_catalog
from services.core.catalog.service import sync_catalog
from services.core.db import create_engine, session_factory, unit_of_work
from services.core.monitors.models import MonitorRecord
from services.core.settings import get_settings
from services.core.telemetry.worker_stats import HEARTBEAT_KEY

ROOT = Path(__file__).resolve().parents[1]
SATKER = "pn-tais"
INTERVAL_S = 60
TARGET_P99_S = 2.0
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
# The first slot lies this far after the rows are written, so none is late at birth.
LEAD_S = 2.0
RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


# --- the local site -------------------------------------------------------------------


async def serve(port: int) -> None:
    """Answer every request `200 ok`, keeping connections open (the worker's httpx client
    pools them, as it would with a real site)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")  # GET requests carry no body
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError("the local HTTP server did not start")


# --- processes ------------------------------------------------------------------------


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "alur"), "worker"],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            # Its own group, so stopping it reaches anything it started.
            start_new_session=True,
        )


def start_server(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", str(port)],
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group (arq finishes or cancels its jobs), then SIGKILL."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


# --- the scratch database -------------------------------------------------------------


async def prepare(catalog_path: Path) -> None:
    """Migrate (settings come from the environment) and load the catalog."""
    await asyncio.to_thread(migrate.upgrade)
    engine = create_engine(get_settings())
    try:
        async with unit_of_work(session_factory(engine)) as session:
            await sync_catalog(session, load_catalog(catalog_path), datetime.now(UTC))
    finally:
        await engine.dispose()


async def insert_monitors(count: int, url: str, first_slot: datetime) -> dict[str, datetime]:
    """`count` monitors whose first slots are spread evenly over one interval; returns
    each one's first slot."""
    now = datetime.now(UTC)
    firsts = {
        str(uuid.uuid4()): first_slot + timedelta(seconds=INTERVAL_S * n / count)
        for n in range(count)
    }
    engine = create_engine(get_settings())
    try:
        async with unit_of_work(session_factory(engine)) as session:
            session.add_all(
                MonitorRecord(
                    id=monitor_id,
                    satker_id=SATKER,
                    name=f"bench {n}",
                    url=f"{url}/site/{n}",
                    interval_seconds=INTERVAL_S,
                    check_certificate=False,
                    check_domain=False,
                    next_check_at=first,
                    created_at=now,
                )
                for n, (monitor_id, first) in enumerate(firsts.items())
            )
    finally:
        await engine.dispose()
    return firsts


# --- one run --------------------------------------------------------------------------


@dataclass
class RunResult:
    workers: int
    seconds: float
    checks: int
    expected_slots: int
    missed_slots: int
    duplicate_checks: int
    unexpected_checks: int  # not at an expected slot: a late slot skipped ahead, or the tail
    down_checks: int
    lag_p50_s: float
    lag_p95_s: float
    lag_p99_s: float
    lag_max_s: float
    http_latency_p50_ms: float
    http_latency_p99_ms: float
    checks_per_monitor: dict[str, float]
    # Max lag of the checks due in each 10 s of the run: tells a steady lag from stalls.
    max_lag_per_10s: list[float]
    worker_cpu_cores: float  # the worker processes' CPU, averaged over the run
    machine_cpu_cores: float  # every process on the machine (other tenants included)


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def heartbeats(redis: Redis) -> int:
    return int(await redis.hlen(HEARTBEAT_KEY))  # type: ignore[misc]


async def measure(
    args: argparse.Namespace,
    database: Database,
    env: dict[str, str],
    site: str,
    redis: Redis,
    workers: int,
) -> RunResult:
    await redis.flushdb()
    connection = await asyncpg.connect(database.dsn)
    try:
        await connection.execute("DELETE FROM monitor_check; DELETE FROM monitor")
    finally:
        await connection.close()
    processes = []
    try:
        for n in range(workers):
            log = args.out.parent / f"monitors-worker-{workers}-{n + 1}.log"
            processes.append(start_worker(env, log))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while await heartbeats(redis) < workers:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"the workers did not start; see {args.out.parent}")
            await asyncio.sleep(0.1)
        first_slot = datetime.now(UTC) + timedelta(seconds=LEAD_S)
        firsts = await insert_monitors(args.monitors, site, first_slot)
        cpu0 = sum(cpu_seconds(p.pid) for p in processes)
        machine0 = machine_ticks()
        started = time.monotonic()
        print(f"  {args.monitors:,} monitors due from {first_slot:%H:%M:%S}; running...")
        await asyncio.sleep(max(0.0, (first_slot - datetime.now(UTC)).total_seconds()))
        await asyncio.sleep(args.seconds)
        wall = time.monotonic() - started
        worker_cores = (sum(cpu_seconds(p.pid) for p in processes) - cpu0) / wall
        busy1, total1 = machine_ticks()
        machine_cores = (os.cpu_count() or 1) * (busy1 - machine0[0]) / (total1 - machine0[1])
        stopped_at = datetime.now(UTC)
    finally:
        for process in processes:
            stop(process)
    return await analyse(args, database, workers, firsts, stopped_at, worker_cores, machine_cores)


async def analyse(
    args: argparse.Namespace,
    database: Database,
    workers: int,
    firsts: dict[str, datetime],
    stopped_at: datetime,
    worker_cores: float,
    machine_cores: float,
) -> RunResult:
    connection = await asyncpg.connect(database.dsn)
    try:
        rows = await connection.fetch(
            "SELECT monitor_id, scheduled_at, checked_at, up, latency_ms FROM monitor_check"
        )
    finally:
        await connection.close()
    if not rows:
        raise RuntimeError("no monitor check ran; see the worker logs")
    lags = sorted((row["checked_at"] - row["scheduled_at"]).total_seconds() for row in rows)
    latencies = sorted(row["latency_ms"] for row in rows if row["latency_ms"] is not None)
    ran = Counter((row["monitor_id"], row["scheduled_at"]) for row in rows)
    cutoff = stopped_at - timedelta(seconds=args.grace)
    expected = set()
    for monitor_id, first in firsts.items():
        slot = first
        while slot <= cutoff:
            expected.add((monitor_id, slot))
            slot += timedelta(seconds=INTERVAL_S)
    start = min(firsts.values())
    buckets: dict[int, float] = {}
    for row in rows:
        bucket = int((row["scheduled_at"] - start).total_seconds() // 10)
        lag = (row["checked_at"] - row["scheduled_at"]).total_seconds()
        buckets[bucket] = max(buckets.get(bucket, 0.0), lag)
    per_monitor = Counter(row["monitor_id"] for row in rows)
    counts = [per_monitor.get(monitor_id, 0) for monitor_id in firsts]
    return RunResult(
        workers=workers,
        seconds=args.seconds,
        checks=len(rows),
        expected_slots=len(expected),
        missed_slots=len(expected - ran.keys()),
        duplicate_checks=sum(n - 1 for n in ran.values() if n > 1),
        unexpected_checks=sum(n for key, n in ran.items() if key not in expected),
        down_checks=sum(1 for row in rows if not row["up"]),
        lag_p50_s=round(percentile(lags, 0.50), 3),
        lag_p95_s=round(percentile(lags, 0.95), 3),
        lag_p99_s=round(percentile(lags, 0.99), 3),
        lag_max_s=round(lags[-1], 3),
        http_latency_p50_ms=round(percentile(latencies, 0.50), 1),
        http_latency_p99_ms=round(percentile(latencies, 0.99), 1),
        checks_per_monitor={
            "min": min(counts),
            "mean": round(sum(counts) / len(counts), 2),
            "max": max(counts),
            "expected_mean": round(len(expected) / len(firsts), 2),
        },
        max_lag_per_10s=[round(buckets.get(n, 0.0), 2) for n in range(max(buckets) + 1)],
        worker_cpu_cores=round(worker_cores, 2),
        machine_cpu_cores=round(machine_cores, 2),
    )


# --- report ---------------------------------------------------------------------------


def report(args: argparse.Namespace, results: list[RunResult]) -> dict[str, Any]:
    print()
    print(
        f"{args.monitors:,} monitors every {INTERVAL_S} s against a local HTTP server, "
        f"dispatch every {args.schedule_interval} s, {args.seconds:g} s per run; "
        f"{os.cpu_count()} CPUs shared by workers, PostgreSQL, Redis and the server"
    )
    header = (
        f"{'':10} {'checks':>7} {'expected':>8} {'missed':>6} {'dup':>4} | "
        f"{'lag p50':>8} {'p95':>7} {'p99':>7} {'max':>7} | {'per monitor':>15} | "
        f"{'http p99':>8} | {'CPU worker/all':>14}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        per = r.checks_per_monitor
        name = f"{r.workers} worker{'s' if r.workers > 1 else ''}"
        print(
            f"{name:10} {r.checks:7d} {r.expected_slots:8d} {r.missed_slots:6d} "
            f"{r.duplicate_checks:4d} | {r.lag_p50_s:7.2f}s {r.lag_p95_s:6.2f}s "
            f"{r.lag_p99_s:6.2f}s {r.lag_max_s:6.2f}s | "
            f"{per['min']:3.0f}/{per['mean']:4.2f}/{per['max']:<3.0f} "
            f"(~{per['expected_mean']:.2f}) | {r.http_latency_p99_ms:6.1f}ms | "
            f"{r.worker_cpu_cores:5.2f} / {r.machine_cpu_cores:4.2f}"
        )
    print("-" * len(header))
    for r in results:
        lags = " ".join(f"{lag:.1f}" for lag in r.max_lag_per_10s)
        print(f"max lag (s) per 10 s of slots, {r.workers} worker(s): {lags}")
    met = {r.workers: r.lag_p99_s <= TARGET_P99_S and r.missed_slots == 0 for r in results}
    print(
        f"expected: slots due >= {args.grace:g} s before the stop (checks also count the later "
        "ones); per monitor: min/mean/max (expected mean)."
    )
    print(
        f"Target p99 lag <= {TARGET_P99_S:g} s and no slot missed: "
        + ", ".join(f"{w} worker(s) {'MET' if ok else 'NOT MET'}" for w, ok in met.items())
    )
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "monitors": args.monitors,
        "interval_seconds": INTERVAL_S,
        "schedule_interval_seconds": args.schedule_interval,
        "seconds": args.seconds,
        "grace_seconds": args.grace,
        "runs": [asdict(r) for r in results],
        "target": {"lag_p99_s": TARGET_P99_S, "missed_slots": 0},
        "target_met": {str(w): ok for w, ok in met.items()},
    }


# --- main -----------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--monitors", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=75.0, help="run length after 1st slot")
    parser.add_argument("--workers", default="1,2", help="worker process counts, comma separated")
    parser.add_argument(
        "--schedule-interval",
        type=int,
        default=1,
        help="ALUR_MONITORS__SCHEDULE_INTERVAL_SECONDS of the workers",
    )
    parser.add_argument(
        "--grace", type=float, default=10.0, help="slots this close to the stop are not expected"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
        help="a database to connect to for CREATE/DROP DATABASE of the scratch database",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--log-level", default="WARNING", help="the workers' ALUR_LOG__LEVEL")
    parser.add_argument("--catalog", type=Path, default=ROOT / "sop_catalog")
    parser.add_argument("--out", type=Path, default=ROOT / ".alur" / "bench" / "monitors.json")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workers = [int(n) for n in args.workers.split(",") if n.strip()]
    args.out = args.out.resolve()
    return args


async def main() -> int:
    # SIGTERM (a cancelled `make bench`) cancels the run, so that the workers and the
    # server are stopped and the scratch database dropped by the `finally` blocks.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    args = parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    database = scratch_database(args.postgres_url)
    env = {
        **os.environ,
        "ALUR_ENV": "test",
        "ALUR_AUTH__JWT_SECRET": secrets.token_urlsafe(30),
        "ALUR_DATABASE__URL": database.sqlalchemy_url,
        "ALUR_REDIS__URL": args.redis_url,
        "ALUR_MONITORS__SCHEDULE_INTERVAL_SECONDS": str(args.schedule_interval),
        # A log line per job would cost the shared CPUs what is being measured.
        "ALUR_LOG__LEVEL": args.log_level,
        # As a deployment logs (see the docstring: console tracebacks stall the loop).
        "ALUR_LOG__JSON_FORMAT": "true",
    }
    # This process reads its settings (to migrate) from the same environment.
    os.environ.update(env)
    get_settings.cache_clear()
    port = free_port()
    server = start_server(port)
    redis = Redis.from_url(args.redis_url)
    await admin(database, f'CREATE DATABASE "{database.name}"')
    try:
        await wait_listening(port, server)
        print(f"migrating {database.name} and loading the catalog...")
        await prepare(args.catalog)
        results = []
        for workers in args.workers:
            print(f"{workers} worker process(es):")
            results.append(
                await measure(args, database, env, f"http://127.0.0.1:{port}", redis, workers)
            )
    finally:
        stop(server)
        await redis.flushdb()
        await redis.aclose()
        await admin(database, f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
    document = report(args, results)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    if "--serve" in sys.argv:
        # The local site, run by main() in a process of its own.
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(parse_args().serve))
        sys.exit(0)
    try:
        sys.exit(asyncio.run(main()))
    except (asyncio.CancelledError, KeyboardInterrupt):
        # The finally blocks have run: workers and server stopped, database dropped.
        print("interrupted", file=sys.stderr)
        sys.exit(130)
