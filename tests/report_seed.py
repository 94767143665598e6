"""A quarter of realistic activity for the report tests, written through the use cases
with a fixed clock (each command at the instant the plan says), and the plan's own
record of what happened, from which the tests count independently of the reports.

Every SOP of the catalog is run several times in a satker of the test's own. A run
starts on a working morning, each task is done after a delay drawn from a seeded random
generator (most within the standard, some well past it), at a decision the first
outcome that moves forward is taken, and some runs stop part way (still open).
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.api.context import AppContext
from services.core.engine.definition import SopDefinition, StepKind
from services.core.engine.state import (
    Actor,
    Command,
    Comment,
    CompleteTask,
    RecordExternal,
    TaskState,
    TaskStatus,
)
from services.core.files import service as files
from services.core.files.media import SNIFF_BYTES, detect
from services.core.files.service import Upload
from services.core.instances import service as instances
from services.core.instances.service import Applied, InstanceView
from tests.support import TokenFactory


@dataclass
class SeededTask:
    id: str
    instance_id: str
    sop: str
    step_id: str
    opened_at: datetime
    due_at: datetime | None
    completed_at: datetime | None = None
    comments: list[str] = field(default_factory=list)
    note: str | None = None


@dataclass
class Seeded:
    satker: str
    tasks: dict[str, SeededTask] = field(default_factory=dict)
    instances: dict[str, str] = field(default_factory=dict)  # id -> SOP code

    def record(self, view: InstanceView) -> None:
        self.instances[view.record.id] = view.record.sop_code
        for task in view.state.tasks:
            seen = self.tasks.get(task.id)
            if seen is None:
                seen = self.tasks[task.id] = SeededTask(
                    id=task.id,
                    instance_id=view.record.id,
                    sop=view.record.sop_code,
                    step_id=task.step_id,
                    opened_at=task.opened_at,
                    due_at=task.due_at,
                )
            if task.status is TaskStatus.COMPLETED:
                seen.completed_at = task.completed_at
                seen.note = task.note


def _forward(definition: SopDefinition, task: TaskState) -> str | None:
    step = definition.step(task.step_id)
    if step.outcomes is None:
        return None
    for outcome, target in step.outcomes.items():
        if target is None or definition.step(target).number > step.number:
            return outcome
    return next(iter(step.outcomes))


def _actor(context: AppContext, satker: str) -> Actor:
    roles = frozenset(context.services.roles) | {"admin"}
    return Actor(sub="penguji", roles=roles, satker=satker, name="Penguji Laporan")


async def seed_quarter(
    context: AppContext, satker: str, first_day: datetime, *, runs_per_sop: int = 3, seed: int = 7
) -> Seeded:
    """Runs of every SOP in `satker`, started on the days after `first_day` (a UTC
    instant on a working morning); all activity within 60 days of it."""
    rng = random.Random(seed)
    seeded = Seeded(satker)
    person = _actor(context, satker)
    worker = Actor.worker(satker)
    for number, definition in enumerate(sorted(context.catalog.sops, key=lambda s: s.number)):
        for run in range(runs_per_sop):
            start = first_day + timedelta(days=2 * number + run, hours=rng.randint(0, 3))
            async with context.unit() as work:
                applied = await instances.start_instance(
                    work.session, context.services, person, sop=definition.code,
                    title=f"Uji {definition.code} #{run}", entry_point=None, context={},
                    satker=satker, started_at=None, now=start,
                )  # fmt: skip
            seeded.record(applied.view)
            stop_after = rng.choice([None, None, None, 1, 2])
            await _run(context, seeded, applied, definition, person, worker, rng, stop_after)
    return seeded


async def _run(
    context: AppContext,
    seeded: Seeded,
    applied: Applied,
    definition: SopDefinition,
    person: Actor,
    worker: Actor,
    rng: random.Random,
    stop_after: int | None,
) -> None:
    view, moves = applied.view, 0
    while view.state.is_active and moves < 30:
        if stop_after is not None and moves >= stop_after:
            return
        task = next(t for t in view.state.tasks if t.status is TaskStatus.OPEN)
        step = definition.step(task.step_id)
        standard = (task.due_at - task.opened_at) if task.due_at else timedelta(hours=2)
        late = rng.random() < 0.3
        delay = standard * (rng.uniform(1.2, 3.0) if late else rng.uniform(0.05, 0.9))
        at = task.opened_at + max(delay, timedelta(minutes=1))
        outcome = _forward(definition, task)
        if late:
            reason = f"Terlambat: menunggu {rng.choice(['tanda tangan', 'data', 'jaringan'])}"
            view = await _apply(context, person, view, at - timedelta(seconds=30),
                                lambda _v, a, _i, t=task, r=reason: Comment(
                                    actor=a, text=r, task_id=t.id))  # fmt: skip
            seeded.tasks[task.id].comments.append(reason)
        # An external party's step is recorded with what it sent (a note at least).
        note = "Selesai" if task.kind is StepKind.EXTERNAL or rng.random() < 0.5 else None

        def complete(_view: InstanceView, actor: Actor, ids: list[str], t: TaskState = task,
                     o: str | None = outcome, n: str | None = note) -> Command:  # fmt: skip
            if t.kind is StepKind.EXTERNAL:
                return RecordExternal(actor=actor, task_id=t.id, outcome=o, note=n,
                                      new_task_ids=ids)  # fmt: skip
            return CompleteTask(actor=actor, task_id=t.id, outcome=o, note=n, new_task_ids=ids)

        actor = worker if step.kind is StepKind.AUTOMATED else person
        view = await _apply(context, actor, view, at, complete)
        seeded.record(view)
        moves += 1


async def _apply(context: AppContext, actor: Actor, view: InstanceView, at: datetime,
                 make: object) -> InstanceView:  # fmt: skip
    async with context.unit() as work:
        applied = await instances.apply(
            work.session, context.services, actor, view.record.id, make,  # type: ignore[arg-type]
            if_match=None, now=at,
        )  # fmt: skip
    return applied.view


def monday_morning(year: int, month: int, day: int) -> datetime:
    """08:00 WIB (01:00 UTC) on the given date."""
    return datetime(year, month, day, 1, 0, tzinfo=UTC)


async def seeded_satker(app: FastAPI, auth_headers: TokenFactory) -> Seeded:
    """A satker of its own (no other test writes there) with Q2 activity (one run of each
    SOP from 6 April 2026) and Q3 activity (three runs each from 6 July 2026)."""
    satker = f"pn-lap-{uuid.uuid4().hex[:6]}"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://alur.test") as client:
        created = await client.post(
            "/v1/satkers",
            json={"id": satker, "name": "Pengadilan Negeri Uji Laporan", "parent": "pt-bengkulu"},
            headers=auth_headers(["admin"], satker="pt-bengkulu"),
        )
        assert created.status_code == 201, created.text
    context: AppContext = app.state.context
    april = await seed_quarter(context, satker, monday_morning(2026, 4, 6), runs_per_sop=1, seed=3)
    july = await seed_quarter(context, satker, monday_morning(2026, 7, 6), runs_per_sop=3)
    july.tasks.update(april.tasks)
    july.instances.update(april.instances)
    return july


async def attach_file(
    context: AppContext, actor: Actor, instance_id: str, content: bytes, name: str,
    at: datetime, tmp: Path,
) -> str:  # fmt: skip
    """Attach `content` as an evidence file at `at`, as the upload route does."""
    source = tmp / f"upload-{uuid.uuid4().hex}"
    source.write_bytes(content)
    upload = Upload(
        path=source, name=name, media_type=detect(content[:SNIFF_BYTES], name),
        size=len(content), sha256=hashlib.sha256(content).hexdigest(),
    )  # fmt: skip
    await context.files.put(upload.sha256, source)
    async with context.unit() as work:
        record, _ = await files.attach(
            work.session, context.services, context.settings.files, actor, instance_id, upload,
            task_id=None, now=at,
        )  # fmt: skip
    source.unlink()
    return record.id


async def completed_with_files(
    context: AppContext, satker: str, sop: str, start: datetime, contents: list[bytes],
    tmp: Path, *, seed: int = 11,
) -> InstanceView:  # fmt: skip
    """A run of `sop` started at `start`, with `contents` attached a minute later, then
    taken to its end."""
    person = _actor(context, satker)
    definition = next(d for d in context.catalog.sops if d.code == sop)
    async with context.unit() as work:
        applied = await instances.start_instance(
            work.session, context.services, person, sop=sop, title=f"Bukti {sop}",
            entry_point=None, context={}, satker=satker, started_at=None, now=start,
        )  # fmt: skip
    for number, content in enumerate(contents, start=1):
        await attach_file(context, person, applied.view.record.id, content,
                          f"bukti-{number}.pdf", start + timedelta(minutes=1), tmp)  # fmt: skip
    async with context.unit(read_only=True) as work:
        view = await instances.get_view(work.session, context.services, person,
                                        applied.view.record.id)  # fmt: skip
    seeded = Seeded(satker)
    await _run(context, seeded, Applied(view, ()), definition, person, Actor.worker(satker),
               random.Random(seed), None)  # fmt: skip
    async with context.unit(read_only=True) as work:
        return await instances.get_view(work.session, context.services, person, view.record.id)
