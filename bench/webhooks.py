"""Outbound webhooks: does delivery keep up with a burst of writes, and how soon are the
attempts of a killed worker made again?

Targets (issue 10, part 3): against a local receiver answering in 10 ms, >= 500
deliveries/s with one worker on PostgreSQL, the relay never the bottleneck, and an
expired lease retried within the lease plus one sweep interval whatever the backlog.

What is measured
----------------
Per backend (`--backends`: PostgreSQL in a scratch database `alur_bench_<random>`, and the
embedded default, a SQLite file), after migrating and loading the catalog:

0. The receiver alone: a subprocess (this file with `--serve`) running uvicorn (uvloop,
   httptools) with a bare ASGI app that notes each request's `webhook-id` and arrival
   time, waits `--receiver-delay-ms`, and answers 204. It is driven by a minimal
   keep-alive client on asyncio streams (64 connections, 3 s) to show it is not the
   bottleneck: its rate should be well above the target.
1. `burst`: `--subscriptions` subscriptions to `*` on the receiver; ONE real worker
   (`.venv/bin/alur worker`, every cron job of `services.worker.settings`); then events are
   written through the real write path for `--seconds` at `--rate` events/s: transitions of
   SOP 06 instances (`services.core.instances.service.apply`, each in its own unit of
   work, as the API does; each writes its audit events and their outbox rows), paced
   every 10 ms, 16 at most at once. Then the run waits until every delivery succeeded.
   Reported: the write rate; the relay's rate (outbox rows per second from the first
   write to the last row published) and its lag (published - written, p50/p99); the
   delivery rate (deliveries received per second from the first to the last; and the
   best 5 s); the backlog's drain time (last delivery received - last event written);
   the end-to-end lag (first receipt - event written, p50/p99/max); duplicates received;
   the CPU of the worker, of the receiver and of the whole machine.
2. `backlog`: `--backlog` outbox rows (findings, written in bulk) waiting when one worker
   starts: the ceiling. Reported: the relay's rate (rows / time until all were
   published), the delivery rate (first receipts per second), the drain time, and the
   worker's CPU per delivery (the figure that travels between machines).
3. `kill`: a backlog of `--kill-backlog` outbox rows, a worker that
   is killed (SIGKILL) once `--leased` attempts are in flight, and a second worker started
   at once. For each attempt leased by the killed worker: when was it made again, against
   its lease (150 s) plus one sweep interval (5 s), and how many deliveries were still
   pending then (the backlog it had to get past). Waits at most `--lease-grace` seconds
   past the lease.

Timestamps: the writer's clock stamps the outbox rows (`created_at`), the receiver's
clock their arrival: one machine, one clock. The machine is shared (2 CPUs here):
the CPU columns say how busy it was; run a few times and compare.

The workers log JSON lines at WARNING (`--log-level`) into `<out dir>/webhooks-*.log`.
Redis: `--redis-url` (default `/14`) is emptied before each run and at the end.

Run it with `make bench`, or::

    .venv/bin/python bench/webhooks.py --seconds 100 --backends postgres
    .venv/bin/python bench/webhooks.py --scenarios kill --kill-backlog 200000

The figures are printed and written as JSON to `--out` (default
`.alur/bench/webhooks.json`). The exit status is 0 whether or not the targets are met (a
benchmark is not a test); 1 only when the run itself failed.
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
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from redis.asyncio import Redis
from scratch import admin, scratch_database
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from services.core import migrate
from services.core.audit.models import OutboxRecord
from services.core.catalog.loader import load_catalog
from services.core.catalog.service import sync_catalog
from services.core.db import create_engine, session_factory, statements_stand_alone, unit_of_work
from services.core.engine.state import Actor, CompleteTask, InstanceState
from services.core.instances import service as instances
from services.core.secrets import new_key
from services.core.settings import get_settings
from services.core.shared import Services
from services.core.telemetry.worker_stats import HEARTBEAT_KEY
from services.core.webhooks_out import delivery as webhook_delivery
from services.core.webhooks_out.models import WebhookAttemptRecord, WebhookDeliveryRecord
from services.core.webhooks_out.service import create_subscription

ROOT = Path(__file__).resolve().parents[1]
SATKER = "pn-tais"
SOP = "konten-website"
# SOP 06 loops: `periksa_konsep` sends a draft back to `buat_konsep` on `tidak_valid`.
FIRST = ("pembuat_artikel", "siapkan_sumber_data", None)
LOOP = (
    ("pembuat_artikel", "buat_konsep", None),
    ("admin_website", "periksa_konsep", "tidak_valid"),
)
TRANSITIONS_PER_INSTANCE = 20
WRITERS = 16
SQLITE_WRITERS = 2
TICK_S = 0.01
TARGET_DELIVERIES_PER_S = 500.0
SWEEP_INTERVAL_S = 5.0
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
BODY = orjson.dumps({"id": "evt_1", "type": "task.opened", "data": {"x": "y" * 200}})


# --- the receiver ---------------------------------------------------------------------


def serve(port: int, delay_ms: float) -> None:
    """The local receiver: notes `(webhook-id, arrival)`, waits, answers 204.
    `GET /received` gives what it noted, `DELETE /received` forgets it."""
    import uvicorn

    received: list[tuple[str, float]] = []
    delay = delay_ms / 1000

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        if scope["method"] == "POST":
            arrived = time.time()
            webhook_id = next((v for k, v in scope["headers"] if k == b"webhook-id"), b"")
            received.append((webhook_id.decode(), arrived))
            await asyncio.sleep(delay)
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b""
        if scope["method"] == "GET":
            body = orjson.dumps(received)
        else:
            received.clear()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError("the receiver did not start")


async def raw_request(port: int, method: str, path: str, body: bytes = b"") -> bytes:
    """One request on a connection of its own; the answer's body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"{method} {path} HTTP/1.1\r\nhost: bench\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        )
        return await reader.readexactly(length)
    finally:
        writer.close()


async def received(port: int) -> list[tuple[str, float]]:
    return [(str(w), float(t)) for w, t in orjson.loads(await raw_request(port, "GET", "/r"))]


async def forget_received(port: int) -> None:
    await raw_request(port, "DELETE", "/r")


@dataclass
class ReceiverAlone:
    requests_per_s: float
    connections: int
    receiver_cpu_cores: float


async def measure_receiver(port: int, pid: int, seconds: float = 3.0) -> ReceiverAlone:
    """The receiver driven alone by 64 keep-alive connections on asyncio streams."""
    connections = 64
    request = (
        f"POST /hook HTTP/1.1\r\nhost: bench\r\nwebhook-id: alone\r\n"
        f"content-type: application/json\r\ncontent-length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    count = 0
    stop_at = time.monotonic() + seconds

    async def one() -> None:
        nonlocal count
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < stop_at:
                writer.write(request)
                await reader.readuntil(b"\r\n\r\n")  # 204: no body
                count += 1
        finally:
            writer.close()

    cpu0, started = cpu_seconds(pid), time.monotonic()
    await asyncio.gather(*(one() for _ in range(connections)))
    wall = time.monotonic() - started
    cores = (cpu_seconds(pid) - cpu0) / wall
    await forget_received(port)
    return ReceiverAlone(round(count / wall), connections, round(cores, 2))


# --- processes ------------------------------------------------------------------------


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "alur"), "worker"],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_receiver(port: int, delay_ms: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            str(port),
            "--receiver-delay-ms",
            str(delay_ms),
        ],
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """`sig` to the process group (SIGTERM: arq ends its jobs), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


class CpuMeter:
    """Cores used by some processes and by the whole machine since `start`."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self._pids = pids
        self._cpu = sum(cpu_seconds(p) for p in pids())
        self._machine = machine_ticks()
        self._started = time.monotonic()

    def cores(self) -> tuple[float, float]:
        wall = time.monotonic() - self._started
        used = (sum(cpu_seconds(p) for p in self._pids()) - self._cpu) / wall
        busy, total = machine_ticks()
        machine = (os.cpu_count() or 1) * (busy - self._machine[0]) / (total - self._machine[1])
        return round(used, 2), round(machine, 2)


async def wait_for_heartbeat(redis: Redis, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not await redis.hlen(HEARTBEAT_KEY):  # type: ignore[misc]
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"the worker did not start; see {log}")
        await asyncio.sleep(0.1)


# --- the database ---------------------------------------------------------------------


Sessions = async_sessionmaker[AsyncSession]


async def prepare(catalog_path: Path) -> None:
    """Migrate (settings come from the environment) and load the catalog."""
    await asyncio.to_thread(migrate.upgrade)
    engine = create_engine(get_settings())
    try:
        async with unit_of_work(session_factory(engine)) as session:
            await sync_catalog(session, load_catalog(catalog_path), datetime.now(UTC))
    finally:
        await engine.dispose()


def actor(role: str) -> Actor:
    return Actor(sub=f"bench-{role}", roles=frozenset({role}), satker=SATKER)


def complete(step: str, outcome: str | None) -> Callable[..., CompleteTask]:
    def make(state: InstanceState, acting: Actor, ids: list[str]) -> CompleteTask:
        task = next(t for t in state.open_tasks if t.step_id == step)
        return CompleteTask(actor=acting, task_id=task.id, outcome=outcome, new_task_ids=ids)

    return make


async def transition(
    sessions: Sessions, services: Services, instance_id: str, move: tuple[Any, ...]
) -> None:
    role, step, outcome = move
    async with unit_of_work(sessions) as session:
        statements_stand_alone(session)
        await instances.apply(
            session,
            services,
            actor(role),
            instance_id,
            complete(step, outcome),
            if_match=None,
            now=datetime.now(UTC),
        )


async def count(sessions: Sessions, query: Any) -> int:
    async with unit_of_work(sessions) as session:
        return int(await session.scalar(query) or 0)


async def seed(
    sessions: Sessions, services: Services, instances_count: int
) -> tuple[list[str], set[str], float]:
    """Start SOP 06 instances and complete their first step; mark their outbox rows
    published (nobody subscribed yet). Returns the instances, those whose first loop
    transition was made to count the outbox rows one writes, and that count."""
    ids = []
    for _ in range(instances_count):
        async with unit_of_work(sessions) as session:
            applied = await instances.start_instance(
                session,
                services,
                actor("pembuat_artikel"),
                sop=SOP,
                title="bench",
                entry_point=None,
                context={},
                satker=None,
                started_at=None,
                now=datetime.now(UTC),
            )
            ids.append(applied.view.record.id)
    for instance_id in ids:
        await transition(sessions, services, instance_id, FIRST)
    before = await count(sessions, sa.select(sa.func.count()).select_from(OutboxRecord))
    probe = ids[: min(len(ids), 20)]
    for instance_id in probe:
        await transition(sessions, services, instance_id, LOOP[0])
    after = await count(sessions, sa.select(sa.func.count()).select_from(OutboxRecord))
    async with unit_of_work(sessions) as session:
        await session.execute(
            sa.update(OutboxRecord)
            .where(OutboxRecord.published_at.is_(None))  # type: ignore[union-attr]
            .values(published_at=datetime.now(UTC))
        )
    return ids, set(probe), (after - before) / len(probe)


@dataclass
class Written:
    transitions: int
    seconds: float
    first_at: datetime
    last_at: datetime
    refused: int  # transitions the database refused (SQLite: "database is locked")


async def write_burst(
    sessions: Sessions,
    services: Services,
    ids: list[str],
    probed: set[str],
    transitions_per_s: float,
    seconds: float,
    writers: int,
) -> Written:
    """Transitions at a steady rate, each instance alternating the two LOOP moves."""
    turns = {i: (1 if i in probed else 0) for i in ids}
    idle = list(ids)
    gate = asyncio.Semaphore(writers)
    refused = 0
    tasks: set[asyncio.Task[None]] = set()
    launched = 0
    first_at = datetime.now(UTC)
    started = time.monotonic()

    async def one(instance_id: str) -> None:
        nonlocal refused
        async with gate:
            try:
                await transition(sessions, services, instance_id, LOOP[turns[instance_id] % 2])
                turns[instance_id] += 1
            except sa.exc.OperationalError:
                refused += 1
        idle.append(instance_id)

    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * transitions_per_s) - launched
        for _ in range(min(due, len(idle))):
            task = asyncio.create_task(one(idle.pop(0)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            launched += 1
        await asyncio.sleep(TICK_S)
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    return Written(launched - refused, elapsed, first_at, datetime.now(UTC), refused)


async def subscribe(sessions: Sessions, url: str, count_: int) -> list[str]:
    made = []
    async with unit_of_work(sessions) as session:
        for n in range(count_):
            created = await create_subscription(
                session,
                satker_id=SATKER,
                url=f"{url}/hook/{n}",
                event_types=["*"],
                active=True,
                description="bench",
                created_by="bench",
                allow_private=True,
                now=datetime.now(UTC),
            )
            made.append(created.subscription.id)
    return made


async def reset_webhooks(sessions: Sessions) -> None:
    """No deliveries, nothing waiting in the outbox, no subscriptions."""
    async with unit_of_work(sessions) as session:
        await session.execute(sa.delete(WebhookAttemptRecord))
        await session.execute(sa.delete(WebhookDeliveryRecord))
        await session.execute(sa.text("DELETE FROM webhook_subscription"))
        await session.execute(
            sa.update(OutboxRecord)
            .where(OutboxRecord.published_at.is_(None))  # type: ignore[union-attr]
            .values(published_at=datetime.now(UTC))
        )


PENDING = sa.select(sa.func.count()).where(WebhookDeliveryRecord.status == "pending")  # type: ignore[arg-type]
UNPUBLISHED = sa.select(sa.func.count()).where(OutboxRecord.published_at.is_(None))  # type: ignore[union-attr]


# --- scenario 1: a burst --------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


@dataclass
class Burst:
    backend: str
    seconds: float
    subscriptions: int
    events_written: int
    write_rate_per_s: float
    writes_refused: int
    relay_rate_per_s: float
    relay_lag_p50_s: float
    relay_lag_p99_s: float
    relay_done_after_last_write_s: float
    deliveries: int
    delivered: int
    duplicates_received: int
    not_succeeded: int
    delivery_rate_per_s: float
    best_5s_rate_per_s: float
    drain_after_last_write_s: float
    lag_p50_s: float
    lag_p99_s: float
    lag_max_s: float
    # The lag's parts: delivery made -> first attempt claimed -> request received.
    claim_lag_p50_s: float
    claim_lag_p99_s: float
    send_lag_p50_s: float
    send_lag_p99_s: float
    worker_cpu_cores: float
    receiver_cpu_cores: float
    machine_cpu_cores: float
    complete: bool


async def burst(ctx: Context, backend: str) -> Burst:
    args, sessions = ctx.args, ctx.sessions
    await reset_webhooks(sessions)
    subscriptions = await subscribe(sessions, ctx.receiver_url, args.subscriptions)
    transitions_per_s = ctx.rate / ctx.events_per_transition
    await ctx.redis.flushdb()
    log = args.out.parent / f"webhooks-{backend}-burst-worker.log"
    worker = start_worker(ctx.env, log)
    try:
        await wait_for_heartbeat(ctx.redis, worker, log)
        await forget_received(ctx.port)
        meter = CpuMeter(lambda: [worker.pid])
        receiver_meter = CpuMeter(lambda: [ctx.receiver_pid])
        print(f"  writing {ctx.rate:g} events/s for {args.seconds:g} s...")
        written = await write_burst(
            sessions,
            ctx.services,
            ctx.ids,
            ctx.probed,
            transitions_per_s,
            args.seconds,
            ctx.writers,
        )
        print(
            f"  {written.transitions} transitions written ({written.refused} refused by the "
            "database); draining..."
        )
        deadline = time.monotonic() + args.drain_timeout
        complete = False
        while time.monotonic() < deadline:
            waiting = await count(sessions, UNPUBLISHED) + await count(sessions, PENDING)
            if not waiting:
                complete = True
                break
            await asyncio.sleep(0.5)
        worker_cores, machine_cores = meter.cores()
        receiver_cores, _ = receiver_meter.cores()
    finally:
        stop(worker)
    arrivals = await received(ctx.port)
    return await analyse_burst(
        ctx,
        backend,
        written,
        subscriptions,
        arrivals,
        complete,
        (worker_cores, receiver_cores, machine_cores),
    )


async def analyse_burst(
    ctx: Context,
    backend: str,
    written: Written,
    subscriptions: list[str],
    arrivals: list[tuple[str, float]],
    complete: bool,
    cores: tuple[float, float, float],
) -> Burst:
    async with unit_of_work(ctx.sessions) as session:
        rows = (
            await session.execute(
                sa.select(
                    col(OutboxRecord.id),
                    col(OutboxRecord.created_at),
                    col(OutboxRecord.published_at),
                )
                .where(col(OutboxRecord.created_at) >= written.first_at)
                .where(col(OutboxRecord.type) != "webhook.subscription_disabled")
            )
        ).all()
        deliveries = (
            await session.execute(
                sa.select(
                    col(WebhookDeliveryRecord.id),
                    col(WebhookDeliveryRecord.outbox_id),
                    col(WebhookDeliveryRecord.subscription_id),
                    col(WebhookDeliveryRecord.payload),
                    col(WebhookDeliveryRecord.status),
                    col(WebhookDeliveryRecord.created_at),
                )
            )
        ).all()
        firsts: dict[int, datetime] = dict(
            (
                await session.execute(
                    sa.select(
                        col(WebhookAttemptRecord.delivery_id),
                        col(WebhookAttemptRecord.attempted_at),
                    ).where(col(WebhookAttemptRecord.number) == 1)
                )
            ).all()
        )
    created = {row.id: row.created_at for row in rows}
    published = [row.published_at for row in rows if row.published_at is not None]
    relay_lags = [
        (row.published_at - row.created_at).total_seconds()
        for row in rows
        if row.published_at is not None
    ]
    written_at = {
        f"{d.payload['id']}_{d.subscription_id}": created[d.outbox_id]
        for d in deliveries
        if d.outbox_id in created
    }
    first_seen: dict[str, float] = {}
    for webhook_id, at in arrivals:
        first_seen.setdefault(webhook_id, at)
    ours = {w: at for w, at in first_seen.items() if w in written_at}
    lags = [at - written_at[w].timestamp() for w, at in ours.items()]
    by_id = {f"{d.payload['id']}_{d.subscription_id}": d for d in deliveries}
    claim_lags = [
        (firsts[d.id] - d.created_at).total_seconds()
        for d in deliveries
        if d.outbox_id in created and d.id in firsts
    ]
    send_lags = [
        at - firsts[by_id[w].id].timestamp() for w, at in ours.items() if by_id[w].id in firsts
    ]
    times = sorted(ours.values())
    last_write = max(created.values()).timestamp() if created else 0.0
    first_write = min(created.values()).timestamp() if created else 0.0
    per_second = Counter(int(t) for t in times)
    best = max(
        (sum(per_second.get(s + k, 0) for k in range(5)) / 5 for s in per_second), default=0.0
    )
    span = (times[-1] - times[0]) if len(times) > 1 else float("nan")
    relay_span = (max(published).timestamp() - first_write) if published else float("nan")
    return Burst(
        backend=backend,
        seconds=round(written.seconds, 1),
        subscriptions=len(subscriptions),
        events_written=len(rows),
        write_rate_per_s=round(len(rows) / written.seconds, 1),
        writes_refused=written.refused,
        relay_rate_per_s=round(len(published) / relay_span, 1),
        relay_lag_p50_s=round(percentile(relay_lags, 0.5), 3),
        relay_lag_p99_s=round(percentile(relay_lags, 0.99), 3),
        relay_done_after_last_write_s=round(
            (max(published).timestamp() - last_write) if published else float("nan"), 2
        ),
        deliveries=len(written_at),
        delivered=len(ours),
        duplicates_received=sum(1 for w, _ in arrivals if w in written_at) - len(ours),
        not_succeeded=sum(
            1 for d in deliveries if d.outbox_id in created and d.status != "succeeded"
        ),
        delivery_rate_per_s=round(len(times) / span, 1),
        best_5s_rate_per_s=round(best, 1),
        drain_after_last_write_s=round(times[-1] - last_write, 2) if times else float("nan"),
        lag_p50_s=round(percentile(lags, 0.5), 3),
        lag_p99_s=round(percentile(lags, 0.99), 3),
        lag_max_s=round(max(lags), 3) if lags else float("nan"),
        claim_lag_p50_s=round(percentile(claim_lags, 0.5), 3),
        claim_lag_p99_s=round(percentile(claim_lags, 0.99), 3),
        send_lag_p50_s=round(percentile(send_lags, 0.5), 3),
        send_lag_p99_s=round(percentile(send_lags, 0.99), 3),
        worker_cpu_cores=cores[0],
        receiver_cpu_cores=cores[1],
        machine_cpu_cores=cores[2],
        complete=complete,
    )


# --- scenario 2: a backlog drained --------------------------------------------------


@dataclass
class Backlog:
    backend: str
    rows: int
    relay_rate_per_s: float
    delivery_rate_per_s: float
    drained_s: float
    delivered: int
    duplicates_received: int
    worker_cpu_cores: float
    worker_cpu_ms_per_delivery: float
    machine_cpu_cores: float
    complete: bool


async def backlog(ctx: Context, backend: str) -> Backlog:
    """What one worker does with `--backlog` outbox rows already waiting: the ceiling."""
    args, sessions = ctx.args, ctx.sessions
    await reset_webhooks(sessions)
    await subscribe(sessions, ctx.receiver_url, 1)
    print(f"  writing a backlog of {args.backlog:,} outbox rows...")
    await write_backlog(sessions, args.backlog)
    await ctx.redis.flushdb()
    await forget_received(ctx.port)
    log = args.out.parent / f"webhooks-{backend}-backlog-worker.log"
    worker = start_worker(ctx.env, log)
    relayed_s = float("nan")
    complete = False
    try:
        await wait_for_heartbeat(ctx.redis, worker, log)
        meter = CpuMeter(lambda: [worker.pid])
        started = time.monotonic()
        deadline = started + args.drain_timeout
        while time.monotonic() < deadline:
            unpublished = await count(sessions, UNPUBLISHED)
            if not unpublished and math.isnan(relayed_s):
                relayed_s = time.monotonic() - started
            if not unpublished and not await count(sessions, PENDING):
                complete = True
                break
            await asyncio.sleep(0.5)
        drained_s = time.monotonic() - started
        worker_cores, machine_cores = meter.cores()
    finally:
        stop(worker)
    arrivals = await received(ctx.port)
    first_seen: dict[str, float] = {}
    for webhook_id, at in arrivals:
        first_seen.setdefault(webhook_id, at)
    times = sorted(first_seen.values())
    rate = len(times) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
    return Backlog(
        backend=backend,
        rows=args.backlog,
        relay_rate_per_s=round(args.backlog / relayed_s, 1),
        delivery_rate_per_s=round(rate, 1),
        drained_s=round(drained_s, 1),
        delivered=len(times),
        duplicates_received=len(arrivals) - len(times),
        worker_cpu_cores=worker_cores,
        worker_cpu_ms_per_delivery=round(worker_cores * drained_s * 1000 / max(1, len(times)), 2),
        machine_cpu_cores=machine_cores,
        complete=complete,
    )


# --- scenario 3: a worker killed with attempts in flight ------------------------------


@dataclass
class Kill:
    backend: str
    backlog_rows: int
    leased_at_kill: int
    pending_at_kill: int
    retried: int
    not_retried: int
    retry_after_claim_min_s: float
    retry_after_claim_p50_s: float
    retry_after_claim_max_s: float
    limit_s: float  # the lease plus one sweep interval
    pending_when_last_retried: int
    received_before_kill: int


async def write_backlog(sessions: Sessions, rows: int) -> None:
    """`rows` findings' outbox rows, as `record_finding` writes them, in bulk."""
    now = datetime.now(UTC)
    chunk = 2000
    async with unit_of_work(sessions) as session:
        for start in range(0, rows, chunk):
            await session.execute(
                sa.insert(OutboxRecord),
                [
                    {
                        "event_id": None,
                        "satker_id": SATKER,
                        "type": "monitor.down",
                        "payload": {
                            "id": f"fnd_bench_{n}",
                            "type": "monitor.down",
                            "occurred_at": now.isoformat(),
                            "satker": SATKER,
                            "subject": f"monitor:bench-{n}",
                            "data": {"url": "https://pn-tais.go.id/", "error": "HTTP 503"},
                        },
                        "created_at": now,
                    }
                    for n in range(start, min(rows, start + chunk))
                ],
            )


async def leased(sessions: Sessions) -> list[tuple[int, int, datetime]]:
    """(delivery, attempt number, claimed at) of the attempts in flight now."""
    async with unit_of_work(sessions) as session:
        rows = await session.execute(
            sa.select(
                col(WebhookAttemptRecord.delivery_id),
                col(WebhookAttemptRecord.number),
                col(WebhookAttemptRecord.attempted_at),
            )
            .join(
                WebhookDeliveryRecord,
                col(WebhookDeliveryRecord.id) == col(WebhookAttemptRecord.delivery_id),
            )
            .where(col(WebhookAttemptRecord.duration_ms).is_(None))
            .where(col(WebhookDeliveryRecord.status) == "pending")
            .where(col(WebhookDeliveryRecord.attempts) == col(WebhookAttemptRecord.number))
        )
        return [(r[0], r[1], r[2]) for r in rows.all()]


async def kill(ctx: Context, backend: str) -> Kill:
    args, sessions = ctx.args, ctx.sessions
    await reset_webhooks(sessions)
    await subscribe(sessions, ctx.receiver_url, 1)
    print(f"  writing a backlog of {args.kill_backlog:,} outbox rows...")
    await write_backlog(sessions, args.kill_backlog)
    await ctx.redis.flushdb()
    await forget_received(ctx.port)
    log = args.out.parent / f"webhooks-{backend}-kill-worker.log"
    first = start_worker(ctx.env, log)
    try:
        await wait_for_heartbeat(ctx.redis, first, log)
        deadline = time.monotonic() + 120
        in_flight: list[tuple[int, int, datetime]] = []
        while time.monotonic() < deadline:
            in_flight = await leased(sessions)
            if len(in_flight) >= args.leased:
                break
            await asyncio.sleep(0.02)
        stop(first, signal.SIGKILL)
    finally:
        stop(first)
    in_flight = await leased(sessions)  # what the killed worker left behind
    pending_at_kill = await count(sessions, PENDING) + await count(sessions, UNPUBLISHED)
    received_before = len(await received(ctx.port))
    print(
        f"  killed with {len(in_flight)} attempts leased, {pending_at_kill:,} deliveries "
        f"or rows waiting; a new worker runs..."
    )
    lease = webhook_delivery.LEASE.total_seconds()
    limit = lease + SWEEP_INTERVAL_S
    second = start_worker(ctx.env, log)
    retried: dict[int, float] = {}
    pending_then = 0
    try:
        await wait_for_heartbeat(ctx.redis, second, log)
        wanted = {delivery_id: (number, at) for delivery_id, number, at in in_flight}
        latest = max((at for _, _, at in in_flight), default=datetime.now(UTC))
        give_up = latest + timedelta(seconds=lease + args.lease_grace)
        while wanted.keys() - retried.keys() and datetime.now(UTC) < give_up:
            await asyncio.sleep(1.0)
            async with unit_of_work(sessions) as session:
                rows = await session.execute(
                    sa.select(
                        col(WebhookAttemptRecord.delivery_id),
                        col(WebhookAttemptRecord.number),
                        col(WebhookAttemptRecord.attempted_at),
                    ).where(
                        col(WebhookAttemptRecord.delivery_id).in_(
                            list(wanted.keys() - retried.keys())
                        )
                    )
                )
                for delivery_id, number, at in rows.all():
                    if number == wanted[delivery_id][0] + 1:
                        retried[delivery_id] = (at - wanted[delivery_id][1]).total_seconds()
            if retried:
                pending_then = await count(sessions, PENDING) + await count(sessions, UNPUBLISHED)
    finally:
        stop(second)
    delays = list(retried.values())
    return Kill(
        backend=backend,
        backlog_rows=args.kill_backlog,
        leased_at_kill=len(in_flight),
        pending_at_kill=pending_at_kill,
        retried=len(retried),
        not_retried=len(in_flight) - len(retried),
        retry_after_claim_min_s=round(min(delays), 1) if delays else float("nan"),
        retry_after_claim_p50_s=round(percentile(delays, 0.5), 1),
        retry_after_claim_max_s=round(max(delays), 1) if delays else float("nan"),
        limit_s=limit,
        pending_when_last_retried=pending_then,
        received_before_kill=received_before,
    )


# --- one backend ----------------------------------------------------------------------


@dataclass
class Context:
    args: argparse.Namespace
    env: dict[str, str]
    sessions: Sessions
    services: Services
    redis: Redis
    port: int
    receiver_pid: int
    ids: list[str] = field(default_factory=list)
    probed: set[str] = field(default_factory=set)
    events_per_transition: float = 2.0
    rate: float = 500.0
    writers: int = WRITERS

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def run_backend(
    args: argparse.Namespace, backend: str, url: str, base_env: dict[str, str], port: int, pid: int
) -> dict[str, Any]:
    env = {**base_env, "ALUR_DATABASE__URL": url}
    os.environ.update(env)
    get_settings.cache_clear()
    print(f"{backend}: migrating and loading the catalog...")
    await prepare(args.catalog)
    settings = get_settings()
    engine = create_engine(settings)
    redis = Redis.from_url(args.redis_url)
    try:
        sessions = session_factory(engine)
        catalog = load_catalog(args.catalog)
        services = Services(roles={role.id: role for role in catalog.roles})
        ctx = Context(args, env, sessions, services, redis, port, pid)
        if backend == "sqlite":
            # One writer: the API of the embedded mode, not a fleet of them.
            ctx.rate, ctx.writers = args.sqlite_rate, SQLITE_WRITERS
        else:
            ctx.rate = args.rate
        result: dict[str, Any] = {}
        if "burst" in args.scenarios:
            transitions = ctx.rate / 2 * args.seconds
            count_ = max(WRITERS * 2, math.ceil(transitions / TRANSITIONS_PER_INSTANCE))
            print(f"  seeding {count_} instances...")
            ctx.ids, ctx.probed, ctx.events_per_transition = await seed(sessions, services, count_)
            result["burst"] = asdict(await burst(ctx, backend))
        if "backlog" in args.scenarios:
            result["backlog"] = asdict(await backlog(ctx, backend))
        if "kill" in args.scenarios:
            result["kill"] = asdict(await kill(ctx, backend))
        return result
    finally:
        await redis.flushdb()
        await redis.aclose()
        await engine.dispose()


# --- report ---------------------------------------------------------------------------


def report(
    args: argparse.Namespace, alone: ReceiverAlone, results: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    print()
    print(
        f"receiver alone ({args.receiver_delay_ms:g} ms per answer): "
        f"{alone.requests_per_s:,.0f} requests/s over {alone.connections} connections, "
        f"{alone.receiver_cpu_cores} cores"
    )
    for backend, result in results.items():
        if b := result.get("burst"):
            print(
                f"\n{backend} burst: {b['events_written']:,} events in {b['seconds']} s "
                f"({b['write_rate_per_s']:,.0f}/s; {b['writes_refused']} transitions refused), "
                f"{b['subscriptions']} subscription(s)"
            )
            print(
                f"  relay      {b['relay_rate_per_s']:8,.1f} rows/s   lag p50 "
                f"{b['relay_lag_p50_s']:.2f} s p99 {b['relay_lag_p99_s']:.2f} s, done "
                f"{b['relay_done_after_last_write_s']:.1f} s after the last write"
            )
            print(
                f"  delivery   {b['delivery_rate_per_s']:8,.1f} /s (best 5 s "
                f"{b['best_5s_rate_per_s']:,.0f}/s)  {b['delivered']:,}/{b['deliveries']:,} "
                f"received, {b['duplicates_received']} duplicates, "
                f"{b['not_succeeded']} not succeeded{'' if b['complete'] else ' (TIMED OUT)'}"
            )
            print(
                f"  drained {b['drain_after_last_write_s']:.1f} s after the last write; "
                f"end-to-end lag p50 {b['lag_p50_s']:.2f} s p99 {b['lag_p99_s']:.2f} s "
                f"max {b['lag_max_s']:.2f} s (claimed p50 {b['claim_lag_p50_s']:.2f} s "
                f"p99 {b['claim_lag_p99_s']:.2f} s after the delivery was made; received p50 "
                f"{b['send_lag_p50_s']:.3f} s p99 {b['send_lag_p99_s']:.3f} s after the claim)"
            )
            print(
                f"  CPU cores: worker {b['worker_cpu_cores']}, receiver "
                f"{b['receiver_cpu_cores']}, machine {b['machine_cpu_cores']} of "
                f"{os.cpu_count()}"
            )
        if d := result.get("backlog"):
            print(
                f"\n{backend} backlog of {d['rows']:,} rows: relay {d['relay_rate_per_s']:,.0f} "
                f"rows/s, delivery {d['delivery_rate_per_s']:,.1f}/s, drained in "
                f"{d['drained_s']} s{'' if d['complete'] else ' (TIMED OUT)'}, "
                f"{d['duplicates_received']} duplicates"
            )
            print(
                f"  CPU cores: worker {d['worker_cpu_cores']} "
                f"({d['worker_cpu_ms_per_delivery']} ms per delivery), machine "
                f"{d['machine_cpu_cores']} of {os.cpu_count()}"
            )
        if k := result.get("kill"):
            print(
                f"\n{backend} kill: {k['leased_at_kill']} attempts leased at the kill, "
                f"{k['pending_at_kill']:,} deliveries or rows waiting"
            )
            print(
                f"  retried {k['retried']}/{k['leased_at_kill']} after "
                f"{k['retry_after_claim_min_s']}..{k['retry_after_claim_max_s']} s "
                f"(p50 {k['retry_after_claim_p50_s']} s) from their claim; limit "
                f"{k['limit_s']:g} s; {k['pending_when_last_retried']:,} still waiting then"
            )
    print()
    for backend, result in results.items():
        b, d, k = result.get("burst"), result.get("backlog"), result.get("kill")
        if d:
            ok = d["delivery_rate_per_s"] >= TARGET_DELIVERIES_PER_S and d["complete"]
            verdict = "MET" if ok else "NOT MET"
            print(f"{backend}: backlog drained at >= {TARGET_DELIVERIES_PER_S:g}/s {verdict}")
        if b:
            ok = b["delivery_rate_per_s"] >= TARGET_DELIVERIES_PER_S and b["complete"]
            print(
                f"{backend}: >= {TARGET_DELIVERIES_PER_S:g} deliveries/s "
                f"{'MET' if ok else 'NOT MET'}"
            )
        if k:
            ok = k["not_retried"] == 0 and k["retry_after_claim_max_s"] <= k["limit_s"]
            print(
                f"{backend}: leases retried within {k['limit_s']:g} s {'MET' if ok else 'NOT MET'}"
            )
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "rate": args.rate,
        "seconds": args.seconds,
        "receiver_delay_ms": args.receiver_delay_ms,
        "receiver_alone": asdict(alone),
        "results": results,
    }


# --- main -----------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--scenarios", default="burst,backlog,kill")
    parser.add_argument("--rate", type=float, default=500.0, help="events written per second")
    parser.add_argument(
        "--sqlite-rate", type=float, default=100.0, help="events written per second (SQLite)"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the burst")
    parser.add_argument("--subscriptions", type=int, default=1)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--backlog", type=int, default=30_000, help="outbox rows (backlog)")
    parser.add_argument(
        "--kill-backlog", type=int, default=120_000, help="outbox rows waiting (kill)"
    )
    parser.add_argument("--leased", type=int, default=50, help="attempts in flight at the kill")
    parser.add_argument(
        "--lease-grace", type=float, default=60.0, help="wait this long past the lease (kill)"
    )
    parser.add_argument("--receiver-delay-ms", type=float, default=10.0)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--log-level", default="WARNING", help="the workers' ALUR_LOG__LEVEL")
    parser.add_argument("--catalog", type=Path, default=ROOT / "sop_catalog")
    parser.add_argument("--out", type=Path, default=ROOT / ".alur" / "bench" / "webhooks.json")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.scenarios = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    args.out = args.out.resolve()
    return args


async def main() -> int:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    args = parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    base_env = {
        **os.environ,
        "ALUR_ENV": "test",
        "ALUR_AUTH__JWT_SECRET": secrets.token_urlsafe(30),
        "ALUR_SECRETS__KEYS": new_key(),
        "ALUR_REDIS__URL": args.redis_url,
        "ALUR_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true",
        "ALUR_LOG__LEVEL": args.log_level,
        "ALUR_LOG__JSON_FORMAT": "true",
    }
    port = free_port()
    receiver = start_receiver(port, args.receiver_delay_ms)
    results: dict[str, dict[str, Any]] = {}
    try:
        await wait_listening(port, receiver)
        alone = await measure_receiver(port, receiver.pid)
        for backend in args.backends:
            if backend == "postgres":
                database = scratch_database(args.postgres_url)
                await admin(database, f'CREATE DATABASE "{database.name}"')
                try:
                    results[backend] = await run_backend(
                        args, backend, database.sqlalchemy_url, base_env, port, receiver.pid
                    )
                finally:
                    await admin(database, f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
            else:
                with tempfile.TemporaryDirectory(prefix="alur-bench-") as data_dir:
                    env = {**base_env, "ALUR_DATA_DIR": data_dir}
                    url = f"sqlite+aiosqlite:///{data_dir}/alur.db"
                    results[backend] = await run_backend(
                        args, backend, url, env, port, receiver.pid
                    )
    finally:
        stop(receiver)
    document = report(args, alone, results)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    if "--serve" in sys.argv:
        options = parse_args()
        with contextlib.suppress(KeyboardInterrupt):
            serve(options.serve, options.receiver_delay_ms)
        sys.exit(0)
    try:
        sys.exit(asyncio.run(main()))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
