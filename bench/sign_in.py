"""The cost of a sign-in: Argon2id with Alur's parameters, and a whole password grant.

What is measured
----------------
1. `hash` and `verify` of one password with argon2-cffi and the configured parameters
   (`ALUR_AUTH__PASSWORD_TIME_COST`, `ALUR_AUTH__PASSWORD_MEMORY_KIB`, parallelism 4):
   the time of each call, one after the other (`--rounds`), p50/p95/max.
2. The same verification from `--threads` threads at once (the API hashes in a thread
   pool: one request per core), as verifications per second.
3. Whole sign-ins: `POST /v1/auth/token` through the ASGI app (no network) on the
   embedded backend in a scratch data directory: Argon2id, the lockout's Redis round
   trips, the refresh token insert, the ES256 signature. p50/p95 of `--sign-ins` in a row.

The figures depend on the machine's memory bandwidth and on whatever else runs: on a
shared machine, read them as orders of magnitude and compare ratios (verify vs. a whole
sign-in). Run: `.venv/bin/python bench/sign_in.py [--rounds 20] [--threads 2]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PASSWORD = "kopi-tubruk-pagi-hari"


def _quantiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   "
        f"max {ordered[-1] * 1000:7.1f} ms"
    )


def argon2_figures(rounds: int, threads: int) -> None:
    from services.core.auth.passwords import PARALLELISM, hasher
    from services.core.settings import AuthSettings

    auth = AuthSettings()
    ph = hasher(auth.password_time_cost, auth.password_memory_kib)
    print(
        f"Argon2id: time_cost={auth.password_time_cost}, "
        f"memory={auth.password_memory_kib} KiB, parallelism={PARALLELISM}, "
        f"hash 32 B, salt 16 B"
    )
    hashes, verifies, cpu = [], [], []
    stored = ph.hash(PASSWORD)
    for _ in range(rounds):
        started = time.perf_counter()
        ph.hash(PASSWORD)
        hashes.append(time.perf_counter() - started)
        started, started_cpu = time.perf_counter(), time.process_time()
        ph.verify(stored, PASSWORD)
        verifies.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    print(f"  hash    x{rounds}: {_quantiles(hashes)}")
    print(f"  verify  x{rounds}: {_quantiles(verifies)}")
    # CPU of all the process's threads (the 4 lanes): less sensitive to other load.
    print(f"  verify CPU time:  {_quantiles(cpu)}")

    def verify(_: int) -> None:
        ph.verify(stored, PASSWORD)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        started = time.perf_counter()
        list(pool.map(verify, range(rounds * threads)))
        elapsed = time.perf_counter() - started
    print(f"  verify from {threads} threads: {rounds * threads / elapsed:5.1f} per second")


async def sign_in_figures(count: int) -> None:
    import httpx

    from services.api.app import create_app
    from services.core import migrate
    from services.core.auth.passwords import hash_password
    from services.core.db import create_engine, session_factory, unit_of_work, utcnow
    from services.core.people import service as people
    from services.core.settings import Settings, get_settings

    settings: Settings = get_settings()
    await asyncio.to_thread(migrate.upgrade)
    engine = create_engine(settings)
    async with unit_of_work(session_factory(engine)) as session:
        await people.create(
            session,
            username="bench",
            satker="pn-tais",
            name="Bench",
            roles=["staf_ti"],
            known_roles={"staf_ti": None},
            password_hash=await hash_password(settings.auth, PASSWORD),
            now=utcnow(),
        )
    await engine.dispose()
    app = create_app(settings)
    samples = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _ in range(count):
                started = time.perf_counter()
                response = await client.post(
                    "/v1/auth/token", data={"username": "bench", "password": PASSWORD}
                )
                samples.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
    print(f"POST /v1/auth/token x{count} (embedded, in-process): {_quantiles(samples)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sign-ins", type=int, default=20)
    args = parser.parse_args()
    print(f"CPUs: {os.cpu_count()}, load average: {os.getloadavg()}")
    argon2_figures(args.rounds, args.threads)
    with tempfile.TemporaryDirectory() as directory:
        os.environ["ALUR_DATA_DIR"] = str(Path(directory))
        for name in [key for key in os.environ if key.startswith(("ALUR_DATABASE", "ALUR_REDIS"))]:
            del os.environ[name]
        os.environ["ALUR_LOG__LEVEL"] = "WARNING"
        asyncio.run(sign_in_figures(args.sign_ins))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
