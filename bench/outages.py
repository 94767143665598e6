"""What clients and operators see while PostgreSQL, then Redis, is stopped and restarted.

Issue figures: during a 20 s PostgreSQL stop, 56 requests answered 500 `internal_error`;
after a Redis restart the worker was gone for good and `/readyz` stayed 503. Targets:
no 500 (503 `unavailable` with `Retry-After` instead), the worker healthy again within
30 s of the dependency's return, with no restart by hand.

What runs
---------
A PostgreSQL cluster and a Redis of the benchmark's own (the machine's shared servers are
never stopped; see `tests/servers.py`), migrated; `alur serve` and `alur worker` as
processes with the default settings of a deployment (JSON logs at WARNING, the worker's
heartbeat every 15 s). `--clients` clients loop over `GET /v1/instances` and
`POST /v1/instances` (a SOP without automated steps) the whole time.

Each phase: `--before` s of normal traffic, the dependency stopped for `--stop` s (a fast
shutdown: sessions are cut, as in a restart), started again on the same port, then
`--after` s. Per phase it reports the responses by status while the dependency was down
and after it returned, the seconds from its return to the first 2xx, to a fresh worker
heartbeat (younger than 2 s after a beat) and to `/readyz` answering 200, and whether the
worker process is the one started at the beginning. Lines of the worker's log that say
`unavailable` or `back` are counted (once each per outage is the design).

    .venv/bin/python bench/outages.py              # 20 s stops, 8 clients: about 2 minutes
    .venv/bin/python bench/outages.py --stop 60 --clients 16
    mkdir /tmp/main && git archive main | tar -x -C /tmp/main
    .venv/bin/python bench/outages.py --source /tmp/main   # the same, before this change

The figures are printed and written as JSON to `--out` (default
`.alur/bench/outages.json`). The exit status is 0 whether or not the targets are met (and
when there are no PostgreSQL server binaries to run); it is 1 when the run itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the private servers of tests/servers.py

from services.core.identity.tokens import issue_token  # noqa: E402
from services.core.settings import AuthSettings  # noqa: E402
from services.core.telemetry.worker_stats import heartbeat_ages  # noqa: E402
from tests.servers import PostgresServer, RedisServer, free_port, postgres_binaries  # noqa: E402

SECRET = "alur-bench-outages-0123456789abcdef0123456789"
SOP = "konten-website"
READY_TIMEOUT_S = 90.0
# The code of `--source` (PYTHONPATH), run by this interpreter.
ALUR = [sys.executable, "-m", "services.cli.main"]


@dataclass
class Phase:
    dependency: str
    stop_seconds: float
    down: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    first_success_s: float | None = None
    heartbeat_fresh_s: float | None = None
    ready_s: float | None = None
    worker_survived: bool = False
    log_unavailable: int = 0
    log_back: int = 0


class Load:
    """Clients that never stop asking; each response is kept as (time, status)."""

    def __init__(self, base: str, token: str, clients: int) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}
        self.clients = clients
        self.responses: list[tuple[float, str]] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def _client(self, n: int) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as http:
            while True:
                try:
                    if n % 2:
                        response = await http.post(
                            "/v1/instances",
                            json={"sop": SOP, "title": "Bench"},
                            headers=self.headers,
                        )
                    else:
                        response = await http.get(
                            "/v1/instances", params={"limit": 20}, headers=self.headers
                        )
                    self.responses.append((time.monotonic(), str(response.status_code)))
                except httpx.HTTPError as error:
                    self.responses.append((time.monotonic(), type(error).__name__))
                    await asyncio.sleep(0.2)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(self.clients)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def between(self, start: float, end: float) -> dict[str, int]:
        return dict(Counter(status for at, status in self.responses if start <= at < end))


def _env(database_url: str, redis_url: str, data_dir: Path, source: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALUR_")}
    env.update(
        {
            # The code measured: this checkout, or another one (`--source`).
            "PYTHONPATH": str(source),
            "ALUR_ENV": "test",
            "ALUR_DATA_DIR": str(data_dir),
            "ALUR_DATABASE__URL": database_url,
            "ALUR_REDIS__URL": redis_url,
            "ALUR_AUTH__JWT_SECRET": SECRET,
            "ALUR_LOG__JSON_FORMAT": "true",
            "ALUR_LOG__LEVEL": "WARNING",
        }
    )
    return env


def _start(
    command: list[str], env: dict[str, str], source: Path, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [*ALUR, *command], env=env, cwd=source, stdout=sink, stderr=subprocess.STDOUT
        )


async def _until(predicate: Any, within: float) -> float | None:
    """Seconds until `predicate()` (a coroutine function) is true; None past `within`."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            if await predicate():
                return round(time.monotonic() - started, 1)
        except Exception:  # the dependency may still be on its way back
            pass
        await asyncio.sleep(0.2)
    return None


async def run_phase(
    phase: Phase,
    stop: Any,
    start: Any,
    load: Load,
    redis_url: str,
    api: str,
    worker: subprocess.Popen[bytes],
    worker_log: Path,
    args: argparse.Namespace,
) -> None:
    await asyncio.sleep(args.before)
    await asyncio.to_thread(stop)  # blocking: pg_ctl waits for the server
    down_at = time.monotonic()
    await asyncio.sleep(phase.stop_seconds)
    await asyncio.to_thread(start)
    back_at = time.monotonic()
    redis = Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=2)
    try:

        async def served() -> bool:
            return any(s.startswith("2") for at, s in load.responses if at >= back_at)

        async def fresh() -> bool:
            ages = await heartbeat_ages(redis)
            return bool(ages) and ages[0] < 2

        async def ready() -> bool:
            async with httpx.AsyncClient(timeout=3) as http:
                return (await http.get(f"{api}/readyz")).status_code == 200

        phase.first_success_s, phase.heartbeat_fresh_s, phase.ready_s = await asyncio.gather(
            _until(served, args.after), _until(fresh, args.after), _until(ready, args.after)
        )
    finally:
        await redis.aclose()
    await asyncio.sleep(max(0.0, back_at + args.after - time.monotonic()))
    phase.down = load.between(down_at, back_at)
    phase.after = load.between(back_at, time.monotonic())
    phase.worker_survived = worker.poll() is None
    text = await asyncio.to_thread(worker_log.read_text)
    events = [_event(line) for line in text.splitlines()]
    phase.log_unavailable = events.count(f"{phase.dependency} unavailable")
    phase.log_back = events.count(f"{phase.dependency} back")


def _event(line: str) -> str:
    """A JSON log line's event; a traceback's lines are not JSON."""
    try:
        return str(json.loads(line).get("event", ""))
    except (json.JSONDecodeError, AttributeError):
        return ""


async def main() -> int:
    args = parse_args()
    binaries = postgres_binaries()
    if binaries is None:
        print("skipped: no PostgreSQL server binaries (initdb, pg_ctl) to run a server of its own")
        return 0
    work = Path(tempfile.mkdtemp(prefix="alur-bench-outages-"))
    redis_server = RedisServer(work)
    postgres = PostgresServer(binaries)
    processes: list[subprocess.Popen[bytes]] = []
    phases: list[Phase] = []
    try:
        redis_server.start()
        postgres.init()
        postgres.start()
        source = args.source.resolve()
        env = _env(postgres.url, redis_server.url, work / "data", source)
        migrate = [*ALUR, "migrate"]
        await asyncio.to_thread(subprocess.run, migrate, env=env, cwd=source, check=True)
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        processes.append(_start(["serve", "--port", str(port)], env, source, work / "api.log"))
        worker_log = work / "worker.log"
        worker = _start(["worker"], env, source, worker_log)
        processes.append(worker)
        ready = await _until(lambda: _status(f"{api}/readyz", 200), READY_TIMEOUT_S)
        if ready is None:
            print("the API never became ready; logs in", work)
            return 1
        token = issue_token(
            AuthSettings(jwt_secret=SecretStr(SECRET)),
            sub="bench",
            roles=["staf_ti", "kasubbag_ptip", "admin"],
            satker="pn-tais",
            ttl=timedelta(hours=2),
            now=datetime.now(UTC),
        )
        load = Load(api, token, args.clients)
        load.start()
        try:
            for dependency, stop, start in (
                ("database", postgres.stop, postgres.start),
                ("redis", redis_server.stop, redis_server.start),
            ):
                phase = Phase(dependency, args.stop)
                await run_phase(
                    phase, stop, start, load, redis_server.url, api, worker, worker_log, args
                )
                phases.append(phase)
        finally:
            await load.stop()
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        redis_server.stop()
        postgres.remove()
    report(phases, args)
    return 0


async def _status(url: str, expected: int) -> bool:
    async with httpx.AsyncClient(timeout=3) as http:
        return (await http.get(url)).status_code == expected


def report(phases: list[Phase], args: argparse.Namespace) -> None:
    print(f"{args.clients} clients; each dependency stopped for {args.stop:.0f} s")
    for phase in phases:
        print(f"\n{phase.dependency}:")
        print(f"  while down   {phase.down}")
        print(f"  after return {phase.after}")
        print(
            f"  from its return: first 2xx {phase.first_success_s} s, worker heartbeat "
            f"fresh {phase.heartbeat_fresh_s} s, /readyz 200 {phase.ready_s} s"
        )
        print(
            f"  worker still the same process: {phase.worker_survived}; log lines "
            f"'{phase.dependency} unavailable' {phase.log_unavailable}, "
            f"'{phase.dependency} back' {phase.log_back}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([asdict(phase) for phase in phases], indent=2))
    print(f"\nwritten to {args.out}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stop", type=float, default=20.0, help="seconds each is down")
    parser.add_argument("--before", type=float, default=5.0, help="seconds before a stop")
    parser.add_argument("--after", type=float, default=40.0, help="seconds after a return")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / ".alur/bench/outages.json")
    parser.add_argument(
        "--source",
        type=Path,
        default=ROOT,
        help="the code to run (e.g. an export of another revision: `git archive main`)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
