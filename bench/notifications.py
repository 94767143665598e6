"""Notifications: how many messages one worker makes and sends per second.

What is measured
----------------
Per backend (`--backends`: PostgreSQL in a scratch database, and the embedded default's
SQLite file), after migrating and loading the catalog:

- `--instances` SOP 06 instances are started through the real write path, in
  pn-tais where one person holds the first step's lane (`pembuat_artikel`) with an
  e-mail address and a WhatsApp number, choosing both channels: each instance's
  `task.opened` makes two messages.
- ONE real worker (`alur worker`, every cron job) starts with
  `ALUR_NOTIFY__SMTP_URL` on a local SMTP server (aiosmtpd's `Sink`, a subprocess: it
  takes the whole message and drops it) and WhatsApp through a gateway URL
  (`json://.../api/sendText`) on the webhook benchmark's receiver (answers 204 after
  `--receiver-delay-ms`).
- `relay`: messages made per second (outbox rows in, messages out), from the worker's
  first heartbeat until every outbox row was taken (the relay's cron runs every 2 s:
  that wait is included).
- `email`: e-mails sent per second, first to last `sent_at`; one SMTP connection each.
- `whatsapp`: outside the satker's working hours chat waits for the next working hour;
  then the held messages are made due at once (an UPDATE), and the rate is measured
  the same way. Inside working hours they go with the e-mails.
- The worker's CPU (cores) over the run: the figure that travels between machines.

Run: `.venv/bin/python bench/notifications.py [--instances 1000] [--backends postgres]`.
The exit status is 0 whether or not the figures are good (a benchmark is not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from redis.asyncio import Redis
from scratch import admin, scratch_database
from webhooks import (
    cpu_seconds,
    free_port,
    prepare,
    start_receiver,
    start_worker,
    stop,
    wait_for_heartbeat,
    wait_listening,
)

from services.core.catalog.loader import load_catalog
from services.core.db import create_engine, session_factory, unit_of_work
from services.core.engine.state import Actor
from services.core.instances import service as instances
from services.core.people import service as people
from services.core.secrets import new_key
from services.core.settings import get_settings
from services.core.shared import Services

ROOT = Path(__file__).resolve().parents[1]
SATKER = "pn-tais"
SOP = "konten-website"
PERSON = "bench-penulis"
DRAIN_TIMEOUT_S = 600.0


def start_smtp(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "aiosmtpd", "-n"),
            *("-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def seed(count: int) -> None:
    settings = get_settings()
    engine = create_engine(settings)
    catalog = load_catalog(settings.catalog.path)
    services = Services(roles={role.id: role for role in catalog.roles})
    sessions = session_factory(engine)
    try:
        async with unit_of_work(sessions) as session:
            await people.create(
                session,
                username=PERSON,
                satker=SATKER,
                name="Penulis Bench",
                roles=["pembuat_artikel"],
                known_roles=services.roles,
                email="penulis@pn-tais.example.go.id",
                whatsapp="+6281234567890",
                notify_channels={"task_opened": ["email", "whatsapp"]},
                now=datetime.now(UTC),
            )
        author = Actor(sub=PERSON, roles=frozenset({"pembuat_artikel"}), satker=SATKER)
        for number in range(count):
            async with unit_of_work(sessions) as session:
                await instances.start_instance(
                    session,
                    services,
                    author,
                    sop=SOP,
                    title=f"Berita {number}",
                    entry_point=None,
                    context={},
                    satker=None,
                    started_at=None,
                    now=datetime.now(UTC),
                )
    finally:
        await engine.dispose()


async def scalar(engine: Any, statement: str) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(sa.text(statement))).scalar()


def seconds(value: Any) -> float:
    if isinstance(value, str):  # SQLite
        value = datetime.fromisoformat(value)
    return float(value.timestamp() if value.tzinfo else value.replace(tzinfo=UTC).timestamp())


async def rate(engine: Any, column: str, where: str) -> dict[str, float]:
    async with engine.connect() as connection:
        count, first, last = (
            await connection.execute(
                sa.text(f"SELECT count(*), min({column}), max({column}) FROM notification {where}")
            )
        ).one()
    span = seconds(last) - seconds(first) if count > 1 else 0.0
    return {
        "messages": int(count),
        "seconds": round(span, 2),
        "per_second": round(count / span, 1) if span else 0.0,
    }


async def wait_until(engine: Any, statement: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while int(await scalar(engine, statement) or 0) > 0:
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"gave up waiting for: {statement}")
        await asyncio.sleep(0.2)


async def run_backend(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    os.environ.update(env)
    get_settings.cache_clear()
    await prepare(ROOT / "sop_catalog")
    print(f"  seeding {args.instances} instances...")
    await seed(args.instances)
    engine = create_engine(get_settings())
    redis = Redis.from_url(args.redis_url)
    log = Path(tempfile.gettempdir()) / f"alur-bench-notify-{os.getpid()}.log"
    worker = start_worker(env, log)
    try:
        await wait_for_heartbeat(redis, worker, log)
        cpu0, started = cpu_seconds(worker.pid), time.monotonic()
        await wait_until(engine, "SELECT count(*) FROM outbox WHERE notified_at IS NULL", worker)
        relayed_in = time.monotonic() - started
        made = int(await scalar(engine, "SELECT count(*) FROM notification"))
        await wait_until(
            engine,
            "SELECT count(*) FROM notification WHERE status = 'queued' AND channel = 'email'",
            worker,
        )
        held = int(
            await scalar(
                engine,
                "SELECT count(*) FROM notification WHERE status = 'queued' "
                "AND channel = 'whatsapp'",
            )
        )
        if held:
            async with engine.begin() as connection:
                await connection.execute(
                    sa.text(
                        "UPDATE notification SET next_attempt_at = :now "
                        "WHERE status = 'queued' AND channel = 'whatsapp'"
                    ),
                    {"now": datetime.now(UTC)},
                )
        await wait_until(
            engine, "SELECT count(*) FROM notification WHERE status = 'queued'", worker
        )
        cores = (cpu_seconds(worker.pid) - cpu0) / (time.monotonic() - started)
        async with engine.connect() as connection:
            statuses: dict[Any, Any] = dict(
                (
                    await connection.execute(
                        sa.text("SELECT status, count(*) FROM notification GROUP BY status")
                    )
                ).all()
            )
        result = {
            "relay": {
                "messages": made,
                "seconds": round(relayed_in, 2),
                "per_second": round(made / relayed_in, 1),
            },
            "email": await rate(engine, "sent_at", "WHERE channel = 'email'"),
            "whatsapp": await rate(engine, "sent_at", "WHERE channel = 'whatsapp'"),
            "whatsapp_held_for_working_hours": held,
            "statuses": {str(k): int(v) for k, v in statuses.items()},
            "worker_cores": round(cores, 2),
        }
        print(json.dumps(result, indent=2))
        return result
    finally:
        stop(worker)
        await redis.flushdb()
        await redis.aclose()
        await engine.dispose()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--receiver-delay-ms", type=float, default=10.0)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--out", type=Path, default=ROOT / ".alur" / "bench" / "notifications.json")
    args = parser.parse_args()
    smtp_port, chat_port = free_port(), free_port()
    smtp, receiver = start_smtp(smtp_port), start_receiver(chat_port, args.receiver_delay_ms)
    base_env = {
        **os.environ,
        "ALUR_ENV": "test",
        "ALUR_AUTH__JWT_SECRET": secrets.token_urlsafe(30),
        "ALUR_SECRETS__KEYS": new_key(),
        "ALUR_REDIS__URL": args.redis_url,
        "ALUR_LOG__LEVEL": "WARNING",
        "ALUR_NOTIFY__SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "ALUR_NOTIFY__CHAT_URLS": (
            f"whatsapp=json://127.0.0.1:{chat_port}/api/sendText?:chatId={{digits}}%40c.us"
            "&:message=text&:title=&:version=&:attachments=&:type=&+X-Api-Key=bench"
        ),
    }
    results: dict[str, Any] = {}
    try:
        await wait_listening(smtp_port, smtp)
        await wait_listening(chat_port, receiver)
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            print(f"{backend}:")
            if backend == "postgres":
                database = scratch_database(args.postgres_url)
                await admin(database, f'CREATE DATABASE "{database.name}"')
                try:
                    env = {**base_env, "ALUR_DATABASE__URL": database.sqlalchemy_url}
                    results[backend] = await run_backend(args, env)
                finally:
                    await admin(database, f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
            else:
                with tempfile.TemporaryDirectory(prefix="alur-bench-") as data_dir:
                    env = {
                        **base_env,
                        "ALUR_DATA_DIR": data_dir,
                        "ALUR_DATABASE__URL": f"sqlite+aiosqlite:///{data_dir}/alur.db",
                    }
                    results[backend] = await run_backend(args, env)
    finally:
        stop(receiver)
        stop(smtp)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
