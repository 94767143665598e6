"""What the SOP review tests share: a satker of their own with a few runs of SOP 07
written through the use cases with a fixed clock, the instants a review falls due
relative to when the catalog was loaded (the test database loads it at the session's
start), and an independent count of the figures a review should show."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI

from services.api.context import AppContext
from services.core.catalog import repository as catalog_repository
from services.core.engine.state import Actor, Command, CompleteTask, TaskState, TaskStatus
from services.core.instances import service as instances
from services.core.instances.service import InstanceView
from services.core.reviews import service as reviews
from services.core.reviews.models import SopReviewRecord
from tests.support import TokenFactory

SOP = "gangguan-jaringan"
ZONE = ZoneInfo("Asia/Jakarta")


async def new_satker(client: httpx.AsyncClient, auth_headers: TokenFactory) -> str:
    """A district court no other test writes in."""
    satker = f"pn-rev-{uuid.uuid4().hex[:6]}"
    created = await client.post(
        "/v1/satkers",
        json={"id": satker, "name": "Pengadilan Negeri Uji Reviu", "parent": "pt-bengkulu"},
        headers=auth_headers(["admin"], satker="pt-bengkulu"),
    )
    assert created.status_code == 201, created.text
    return satker


async def loaded_on(context: AppContext, code: str = SOP) -> tuple[datetime, date]:
    """When the SOP's current version was loaded, and that local date."""
    async with context.unit(read_only=True) as work:
        record = await catalog_repository.find_definition(work.session, code)
    assert record is not None
    return record.loaded_at, record.loaded_at.astimezone(ZONE).date()


def morning(day: date) -> datetime:
    """09:00 WIB on `day`."""
    return datetime.combine(day, time(2, 0), UTC)


@dataclass
class Runs:
    satker: str
    tasks: dict[str, TaskState] = field(default_factory=dict)

    def record(self, view: InstanceView) -> None:
        for task in view.state.tasks:
            self.tasks[task.id] = task

    def expected(self, first: datetime, end: datetime, now: datetime) -> dict[str, int]:
        """The figures of the tasks opened in [first, end), counted here."""
        counts = dict.fromkeys(("tasks", "on_time", "late", "open", "open_overdue"), 0)
        for task in self.tasks.values():
            if not first <= task.opened_at < end:
                continue
            counts["tasks"] += 1
            if task.status is TaskStatus.OPEN:
                counts["open"] += 1
                counts["open_overdue"] += task.due_at is not None and task.due_at <= now
            elif task.due_at is not None and task.completed_at is not None:
                counts["on_time" if task.completed_at <= task.due_at else "late"] += 1
        return counts


def person(context: AppContext, satker: str) -> Actor:
    return Actor(
        sub="penguji-reviu",
        roles=frozenset(context.services.roles),
        satker=satker,
        name="Penguji Reviu",
    )


async def run_sop_07(context: AppContext, satker: str, start: datetime) -> Runs:
    """Three runs of SOP 07 from `start`: the first step done on time in one, late in
    another, left open in the third."""
    runs = Runs(satker)
    actor = person(context, satker)
    # Late by a month: later than any run of holidays a calendar may put before a deadline.
    for number, delay in enumerate((timedelta(minutes=1), timedelta(days=30), None)):
        at = start + timedelta(days=number)
        async with context.unit() as work:
            applied = await instances.start_instance(
                work.session, context.services, actor, sop=SOP, title=f"Reviu #{number}",
                entry_point=None, context={}, satker=satker, started_at=None, now=at,
            )  # fmt: skip
        view = applied.view
        runs.record(view)
        if delay is None:
            continue
        task = next(t for t in view.state.tasks if t.status is TaskStatus.OPEN)

        def complete(
            _view: InstanceView, actor: Actor, ids: list[str], task_id: str = task.id
        ) -> Command:
            return CompleteTask(actor=actor, task_id=task_id, new_task_ids=ids)

        async with context.unit() as work:
            done = await instances.apply(
                work.session, context.services, actor, view.record.id, complete,
                if_match=None, now=task.opened_at + delay,
            )  # fmt: skip
        runs.record(done.view)
    return runs


async def open_due(context: AppContext, satker: str, now: datetime) -> list[SopReviewRecord]:
    async with context.unit() as work:
        return await reviews.open_due(work.session, context.services, now, satkers={satker})


def context_of(app: FastAPI) -> AppContext:
    context: AppContext = app.state.context
    return context
