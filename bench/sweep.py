"""The deadline sweep's cost with a million open tasks, on PostgreSQL.

Target (issue): with 1,000,000 open tasks and 10,000 due, the sweep that handles them takes
<= 2 s, and a sweep when nothing is due takes <= 50 ms.

What is measured
----------------
`services.worker.sweep.sweep_backlog` itself, as the worker's `deadline_sweep`
job calls it (batches of `--limit`, each its own committed transaction, `--parallel` loops
at once on PostgreSQL), with a `Services(roles=...)` built from the catalog and the startup heap
frozen as `alur worker` does (`services.core.runtime.freeze_startup_heap`):

1. Idle: `--idle-runs` sweeps when nothing is due; median and max. The first sweep (which
   opens the connection and fills the process' caches) is a warm-up, left out.
2. Due: `--due` tasks are made due, and one sweep handles them: wall time, events written,
   and where the time went (selecting and locking the due rows, the bulk updates, the
   audit and outbox inserts, summed over the batches; the rest is the engine and the hash
   chain in Python). Repeated
   `--repeats` times: between repeats the same tasks are made due again (their instances
   keep the audit chain the sweep extended, as real ones would).
3. The idle sweep right after a due sweep (the index still holds the entries of the rows
   it just moved), and a check that it fires nothing again.
4. `EXPLAIN (ANALYZE, BUFFERS)` of the two due-selection statements the sweep issued
   (captured from the engine, re-run with the due rows in place), to show the partial
   indexes `ix_task_next_check` and `ix_instance_next_check` are used.
5. How many instance row updates PostgreSQL made in place (HOT: the instance table's
   fill factor leaves room on its pages, and the sweep changes no indexed column of a
   task's instance), from `pg_stat_user_tables`.

The data
--------
Instances of SOP `wifi-internet` (version 1, satker `pn-tais`), `--tasks-per-instance`
open tasks each (default 1: the SOP is linear, so a real instance has one open task; it is
also the sweep's worst case, one instance row to lock, update and chain per due task).
Tasks cycle through the SOP's steps with their lanes and kinds. Open tasks that are not
due have their warning, due date and `next_check_at` 30+ days ahead. `wifi-internet` has
no procedure-level time standard, so the engine would leave an instance's `next_check_at`
empty; here instances get one 30+ days ahead anyway, so that `ix_instance_next_check` holds
a million entries too. Every `open/due`-th task is then made due: opened 1-2 minutes ago,
warned already, due 1-50 s ago. Each fires exactly two notices (overdue, and escalation
level 1 to the lane's supervisor); level 2 lies at twice the step's standard after opening
(>= 18 minutes ahead), so `events == 2 * due` is checked.

Seeding is plain SQL (`INSERT ... SELECT generate_series`): the secondary indexes of
`instance` and `task` are dropped first and rebuilt from their own definitions afterwards
(`pg_indexes`), and foreign-key triggers are skipped for the seeding session
(`session_replication_role = replica`; the rows are consistent by construction). Built
that way the indexes are compact, as after a REINDEX. Then ANALYZE, and a CHECKPOINT so
that the load's own writes are not flushed during the sweeps (the sweeps' writes may still
start one, as they would in service; after a checkpoint, the first change to each page
writes the whole page to the WAL, which is most of a due sweep's WAL). The full size seeds
in about a minute on a 2-core machine, so `make bench` runs it; `--quick` (100,000 open,
1,000 due) is for a fast look.

Everything runs in a scratch database (`alur_bench_<random>`) created next to
`--postgres-url`, migrated with `services.core.migrate.upgrade()`, and dropped at the end.

Run it with `make bench`, or::

    .venv/bin/python bench/sweep.py                    # 1,000,000 open / 10,000 due
    .venv/bin/python bench/sweep.py --quick            # 100,000 open / 1,000 due
    .venv/bin/python bench/sweep.py --open 2000000 --due 20000 --out /tmp/sweep.json

The figures are printed as a table and written as JSON to `--out` (default
`.alur/bench/sweep.json`). The exit status is 0 whether or not the target is met (a
benchmark is not a test); it is 1 only when the run itself went wrong (e.g. the sweep
wrote another number of events than the due tasks call for).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from scratch import Database, cancel_on_sigterm, in_scratch_database, run_main
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core import migrate
from services.core.audit import events as audit_events
from services.core.catalog.loader import load_catalog
from services.core.catalog.service import sync_catalog
from services.core.db import create_engine, session_factory, unit_of_work
from services.core.engine.definition import SopDefinition
from services.core.instances import repository
from services.core.runtime import freeze_startup_heap
from services.core.settings import get_settings
from services.core.shared import Services
from services.worker.sweep import sweep_backlog

ROOT = Path(__file__).resolve().parents[1]
SOP, SOP_VERSION, SATKER = "wifi-internet", 1, "pn-tais"
TARGET_DUE_S, TARGET_IDLE_MS = 2.0, 50.0
FULL = (1_000_000, 10_000)
QUICK = (100_000, 1_000)
# Each due task fires "overdue" and "escalated to level 1", nothing more (see the docstring).
EVENTS_PER_DUE_TASK = 2
# Not-due deadlines lie this far ahead, spread by a second per row like real ones.
FAR = timedelta(days=30)


# --- the scratch database -------------------------------------------------------------


async def migrate_and_sync(catalog_path: Path) -> SopDefinition:
    """Migrate the scratch database (settings come from the environment) and load the
    catalog into it, as the API does on start-up; return the benchmarked SOP."""
    await asyncio.to_thread(migrate.upgrade)
    catalog = load_catalog(catalog_path)
    engine = create_engine(get_settings())
    try:
        async with unit_of_work(session_factory(engine)) as session:
            await sync_catalog(session, catalog, datetime.now(UTC))
    finally:
        await engine.dispose()
    return next(d for d in catalog.sops if d.code == SOP and d.version == SOP_VERSION)


# --- seeding --------------------------------------------------------------------------

SEED_INSTANCES = """
INSERT INTO instance (id, satker_id, sop_code, sop_version, title, context, status, version,
    started_at, warn_at, due_at, created_by, event_count, head_hash, escalation_level,
    next_check_at)
SELECT md5('i' || g)::uuid::text, $1, $2, $3, 'bench ' || g, '{}'::jsonb, 'active', 1,
    now - interval '1 day', far + g * interval '1 second',
    far + g * interval '1 second' + interval '1 day', 'bench', 0, '', 0,
    far + g * interval '1 second'
FROM generate_series(1, $6::int) AS g,
    LATERAL (SELECT $4::timestamptz AS now, $4::timestamptz + $5::interval AS far) AS t
"""

# Task g belongs to instance (g - 1) / tasks_per_instance + 1 and runs step (g - 1) % steps.
SEED_TASKS = """
INSERT INTO task (id, instance_id, satker_id, sop_code, step_id, lane, kind, status,
    opened_at, warn_at, due_at, evidence, escalation_level, next_check_at)
SELECT md5('t' || g)::uuid::text, md5('i' || ((g - 1) / $7::int + 1))::uuid::text, $1, $2,
    ($3::text[])[(g - 1) % cardinality($3::text[]) + 1],
    ($4::text[])[(g - 1) % cardinality($4::text[]) + 1],
    ($5::text[])[(g - 1) % cardinality($5::text[]) + 1],
    'open', now - interval '1 hour', far + g * interval '1 second',
    far + g * interval '1 second' + interval '1 hour', '[]'::jsonb, 0,
    far + g * interval '1 second'
FROM generate_series(1, $9::int) AS g,
    LATERAL (SELECT $6::timestamptz AS now, $6::timestamptz + $8::interval AS far) AS t
"""

# Every `stride`-th task becomes due 1-50 s before `now`, warned already. Level 2 fires at
# twice the step's standard (>= 10 working minutes) after opening: well ahead.
MAKE_DUE = """
UPDATE task SET
    opened_at = due - interval '1 minute',
    warn_at = due - interval '30 seconds',
    warned_at = due - interval '30 seconds',
    due_at = due,
    next_check_at = due,
    escalation_level = 0
FROM (
    SELECT g, $1::timestamptz - (1 + g % 50) * interval '1 second' AS due
    FROM generate_series($2::int, $2::int * $3::int, $2::int) AS g
) AS picked
WHERE task.id = md5('t' || picked.g)::uuid::text
"""


@dataclass
class SeedReport:
    instances: int
    tasks: int
    seconds: float
    table_mb: dict[str, float]


async def seed(
    database: Database, definition: SopDefinition, open_tasks: int, per_instance: int, now: datetime
) -> SeedReport:
    started = time.perf_counter()
    instances = -(-open_tasks // per_instance)
    steps = definition.steps
    connection = await asyncpg.connect(database.dsn)
    try:
        await connection.execute("SET session_replication_role = replica")
        await connection.execute("SET maintenance_work_mem = '256MB'")
        indexes = await connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename IN ('instance', 'task') AND indexname NOT LIKE 'pk\\_%'"
        )
        async with connection.transaction():
            for row in indexes:
                await connection.execute(f'DROP INDEX "{row["indexname"]}"')
            await connection.execute(SEED_INSTANCES, SATKER, SOP, SOP_VERSION, now, FAR, instances)
            await connection.execute(
                SEED_TASKS,
                SATKER,
                SOP,
                [step.id for step in steps],
                [step.lane for step in steps],
                [step.kind.value for step in steps],
                now,
                per_instance,
                FAR,
                open_tasks,
            )
            for row in indexes:
                await connection.execute(row["indexdef"])
        await connection.execute("ANALYZE instance, task")
        # The rows of a database in service were written long ago: the bulk load's dirty
        # pages are flushed now rather than by a checkpoint running during the sweeps.
        await connection.execute("CHECKPOINT")
        sizes = await connection.fetch(
            "SELECT relname, pg_total_relation_size(oid) AS bytes FROM pg_class "
            "WHERE relname IN ('instance', 'task')"
        )
    finally:
        await connection.close()
    return SeedReport(
        instances=instances,
        tasks=open_tasks,
        seconds=round(time.perf_counter() - started, 1),
        table_mb={row["relname"]: round(row["bytes"] / 2**20, 1) for row in sizes},
    )


async def make_due(database: Database, open_tasks: int, due: int, now: datetime) -> int:
    connection = await asyncpg.connect(database.dsn)
    try:
        status = await connection.execute(MAKE_DUE, now, open_tasks // due, due)
    finally:
        await connection.close()
    return int(status.split()[-1])


# --- measuring ------------------------------------------------------------------------


@dataclass
class SweepRun:
    seconds: float
    events: int
    tasks: int
    cpu_seconds: float  # this process (Python: engine, hashing, driver), not PostgreSQL
    machine_cores: float  # cores busy on average, every process (other tenants included)
    phases: dict[str, float] = field(default_factory=dict)


class Phases:
    """Wall time spent inside named coroutine functions of the product during a sweep.

    The sweep is one function; to say where its time goes, its steps (module attributes
    looked up at call time) are wrapped for the duration of the benchmark only.
    """

    TARGETS: tuple[tuple[Any, str, str], ...] = (
        (repository, "load_due", "select + lock"),
        (repository, "save_watch", "update instances/tasks"),
        (audit_events, "insert", "insert events + outbox"),
    )

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    @contextmanager
    def installed(self) -> Iterator[None]:
        originals = []
        for module, name, label in self.TARGETS:
            original = getattr(module, name, None)
            if original is None:  # renamed in the product: measure without that phase
                continue
            originals.append((module, name, original))
            setattr(module, name, self._timed(original, label))
        try:
            yield
        finally:
            for module, name, original in originals:
                setattr(module, name, original)

    def _timed(
        self, function: Callable[..., Awaitable[Any]], label: str
    ) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.spent[label] = self.spent.get(label, 0.0) + time.perf_counter() - started

        return timed


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


async def one_sweep(engine: AsyncEngine, services: Services, limit: int, parallel: int) -> SweepRun:
    """What the worker's deadline_sweep job does (`sweep_backlog`: batches of `limit`, each
    committed, `parallel` loops at once on PostgreSQL), timed."""
    phases = Phases()
    sessions = session_factory(engine)
    cpu0, machine0 = _cpu(), _machine_ticks()
    started = time.perf_counter()
    with phases.installed():
        report = await sweep_backlog(
            sessions,
            services,
            datetime.now(UTC),
            multiples=get_settings().worker.escalation_multiples,
            limit=limit,
            budget_seconds=float("inf"),
            parallel=parallel,
        )
    seconds = time.perf_counter() - started
    busy, total = (now - then for now, then in zip(_machine_ticks(), machine0, strict=True))
    return SweepRun(
        seconds=seconds,
        events=report.events,
        tasks=report.tasks,
        cpu_seconds=round(_cpu() - cpu0, 3),
        machine_cores=round((os.cpu_count() or 1) * busy / max(total, 1), 2),
        phases={name: round(value, 4) for name, value in phases.spent.items()},
    )


async def explain(database: Database, now: datetime, limit: int) -> dict[str, dict[str, Any]]:
    """EXPLAIN ANALYZE the sweep's due selection (one statement for tasks and instances)."""
    connection = await asyncpg.connect(database.dsn)
    try:
        statement = repository.DUE_CANDIDATES
        rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", now, limit)
        text = [row[0] for row in rows]
    finally:
        await connection.close()
    return {
        table: {
            "statement": " ".join(statement.split()),
            "index_used": any(f"ix_{table}_next_check" in line for line in text),
            "index": f"ix_{table}_next_check",
            "plan": text,
        }
        for table in ("task", "instance")
    }


async def update_counts(database: Database) -> dict[str, dict[str, int]]:
    """Rows updated in each table so far, and how many in place (HOT: no new index
    entries). Read after the sweeps' connections closed, so their counts are flushed."""
    connection = await asyncpg.connect(database.dsn)
    try:
        rows = await connection.fetch(
            "SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname IN ('instance', 'task')"
        )
    finally:
        await connection.close()
    return {
        row["relname"]: {"updated": row["n_tup_upd"], "in_place": row["n_tup_hot_upd"]}
        for row in rows
    }


# --- report ---------------------------------------------------------------------------


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def report(
    args: argparse.Namespace,
    seeded: SeedReport,
    idle: list[SweepRun],
    due: list[SweepRun],
    after: SweepRun,
    plans: dict[str, dict[str, Any]],
    updates: dict[str, dict[str, int]],
) -> dict[str, Any]:
    idle_ms = sorted(_ms(run.seconds) for run in idle)
    due_s = sorted(run.seconds for run in due)
    idle_median, idle_max = statistics.median(idle_ms), max(idle_ms)
    due_median, due_max = statistics.median(due_s), max(due_s)
    idle_met, due_met = idle_median <= TARGET_IDLE_MS, due_median <= TARGET_DUE_S
    mode = "quick" if args.quick else ("full" if (args.open, args.due) == FULL else "custom")
    cpus = os.cpu_count()
    print()
    print(
        f"Deadline sweep, {mode} size: {seeded.tasks:,} open tasks in {seeded.instances:,} "
        f"instances of {SOP}, {args.due:,} due; {cpus} CPUs shared by Python and PostgreSQL"
    )
    print(
        f"seeded in {seeded.seconds:.1f} s (instance {seeded.table_mb.get('instance')} MB, "
        f"task {seeded.table_mb.get('task')} MB with indexes)"
    )
    header = f"{'':44} {'median':>10} {'max':>10} {'target':>10}  result"
    print(header)
    print("-" * len(header))
    print(
        f"{f'sweep, nothing due ({len(idle)} runs)':44} {idle_median:8.1f}ms {idle_max:8.1f}ms "
        f"{TARGET_IDLE_MS:8.0f}ms  {'MET' if idle_met else 'NOT MET'}"
    )
    print(
        f"{f'sweep, {args.due:,} due ({len(due)} runs)':44} {due_median:9.2f}s {due_max:9.2f}s "
        f"{TARGET_DUE_S:9.1f}s  {'MET' if due_met else 'NOT MET'}"
    )
    print(f"{'sweep right after, nothing due again':44} {_ms(after.seconds):8.1f}ms")
    print("-" * len(header))
    last = due[-1]
    print(
        f"last due sweep: {last.events:,} events for {last.tasks:,} tasks in {last.seconds:.2f} s; "
        f"Python CPU {last.cpu_seconds:.2f} s; machine {last.machine_cores:.2f} of {cpus} cores "
        f"busy (other tenants included); {args.parallel} batches at once. Time "
        "in each phase, summed over the batches (they overlap, and the rest is the engine "
        "and the hash chain in Python):"
    )
    for name, seconds in last.phases.items():
        print(f"  {name:40} {seconds:7.3f} s")
    for table, plan in plans.items():
        verdict = "uses" if plan["index_used"] else "DOES NOT use"
        print(f"due selection on {table} {verdict} {plan['index']}")
    instance = updates.get("instance", {"updated": 0, "in_place": 0})
    print(
        f"instance rows updated in place (HOT, no index entries): {instance['in_place']:,} "
        f"of {instance['updated']:,} (only the sweeps update instances here)"
    )
    for line in next(iter(plans.values()))["plan"]:
        print(f"    {line}")
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": cpus,
        "mode": mode,
        "sop": SOP,
        "open_tasks": seeded.tasks,
        "instances": seeded.instances,
        "tasks_per_instance": args.tasks_per_instance,
        "due_tasks": args.due,
        "limit": args.limit,
        "parallel": args.parallel,
        "seed": asdict(seeded),
        "idle": {
            "runs": len(idle),
            "median_ms": idle_median,
            "max_ms": idle_max,
            "all_ms": idle_ms,
            "right_after_due_sweep_ms": _ms(after.seconds),
        },
        "due": {
            "runs": [asdict(run) for run in due],
            "median_s": round(due_median, 3),
            "max_s": round(due_max, 3),
            "events_per_run": [run.events for run in due],
        },
        "explain": plans,
        "updates": updates,
        "target": {"due_s": TARGET_DUE_S, "idle_ms": TARGET_IDLE_MS},
        "target_met": {"idle": idle_met, "due": due_met},
    }


# --- main -----------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", type=int, default=None, help=f"open tasks (default {FULL[0]:,})")
    parser.add_argument("--due", type=int, default=None, help=f"due tasks (default {FULL[1]:,})")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK[0]:,} open / {QUICK[1]:,} due"
    )
    parser.add_argument("--tasks-per-instance", type=int, default=1)
    parser.add_argument("--idle-runs", type=int, default=20, help="sweeps with nothing due")
    parser.add_argument("--repeats", type=int, default=3, help="sweeps of the due tasks")
    parser.add_argument(
        "--limit", type=int, default=1000, help="the sweep's batch size (the worker's default)"
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=get_settings().worker.sweep_parallel_batches,
        help="batches worked at once (the worker's ALUR_WORKER__SWEEP_PARALLEL_BATCHES)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
        help="a database to connect to for CREATE/DROP DATABASE of the scratch database",
    )
    parser.add_argument("--catalog", type=Path, default=ROOT / "sop_catalog")
    parser.add_argument("--out", type=Path, default=ROOT / ".alur" / "bench" / "sweep.json")
    args = parser.parse_args()
    default_open, default_due = QUICK if args.quick else FULL
    args.open = args.open or default_open
    args.due = args.due or default_due
    if not 0 < args.due <= args.open:
        parser.error("need 0 < --due <= --open")
    if args.repeats < 1 or args.idle_runs < 1:
        parser.error("need at least one run of each kind")
    args.out = args.out.resolve()
    return args


async def run(args: argparse.Namespace, database: Database) -> dict[str, Any]:
    print(f"migrating {database.name} and loading the catalog...")
    definition = await migrate_and_sync(args.catalog)
    print(f"seeding {args.open:,} open tasks...")
    seeded = await seed(database, definition, args.open, args.tasks_per_instance, datetime.now(UTC))
    catalog = load_catalog(args.catalog)
    services = Services(roles={role.id: role for role in catalog.roles})
    freeze_startup_heap()  # as `alur worker` does once started
    engine = create_engine(get_settings())
    try:
        await one_sweep(engine, services, args.limit, args.parallel)  # warm-up: connection, caches
        idle = [
            await one_sweep(engine, services, args.limit, args.parallel)
            for _ in range(args.idle_runs)
        ]
        due_runs = []
        for repeat in range(args.repeats):
            made = await make_due(database, args.open, args.due, datetime.now(UTC))
            if repeat == 0:
                plans = await explain(database, datetime.now(UTC), args.limit)
            print(f"sweeping {made:,} due tasks ({repeat + 1}/{args.repeats})...")
            due_runs.append(await one_sweep(engine, services, args.limit, args.parallel))
            if due_runs[-1].events != EVENTS_PER_DUE_TASK * args.due:
                raise RuntimeError(
                    f"the sweep wrote {due_runs[-1].events} events for {args.due} due tasks, "
                    f"expected {EVENTS_PER_DUE_TASK * args.due}"
                )
        after = await one_sweep(engine, services, args.limit, args.parallel)
        if after.events:
            raise RuntimeError(f"a second sweep fired {after.events} notices again")
    finally:
        await engine.dispose()
    updates = await update_counts(database)
    return report(args, seeded, idle, due_runs, after, plans, updates)


async def main() -> int:
    cancel_on_sigterm()
    args = parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Settings are read from the environment, once: it is set before anything reads them.
    document = await in_scratch_database(args.postgres_url, lambda database: run(args, database))
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    run_main(main)
