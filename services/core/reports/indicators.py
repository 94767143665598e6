"""SAKIP figures: per SOP, month by month, the share of tasks completed on time
(realisation) against the target, for the LKjIP tables.

Counted over the tasks completed in the year (local months of the satker) that have a
time standard: realisation = on time / completed × 100; achievement = realisation /
target × 100 (the LKjIP's *capaian*).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.engine.definition import Catalog
from services.core.instances.models import TaskRecord


@dataclass
class Tally:
    completed: int = 0
    on_time: int = 0

    @property
    def realisation(self) -> float | None:
        return None if not self.completed else round(100 * self.on_time / self.completed, 1)

    def achievement(self, target: float) -> float | None:
        value = self.realisation
        return None if value is None else round(100 * value / target, 1)


@dataclass
class SopIndicator:
    code: str
    number: int | None
    title: str | None
    target: float
    year: Tally = field(default_factory=Tally)
    months: list[Tally] = field(default_factory=lambda: [Tally() for _ in range(12)])


async def completed_rows(
    session: AsyncSession, satker_id: str, start: datetime, end: datetime
) -> Sequence[tuple[str, datetime, datetime]]:
    """(SOP, due, completed) of the satker's tasks with a standard completed in [start, end)."""
    task = TaskRecord.__table__.c  # type: ignore[attr-defined]
    result = await session.execute(
        sa.select(task.sop_code, task.due_at, task.completed_at).where(
            task.satker_id == satker_id,
            task.completed_at >= start,
            task.completed_at < end,
            task.due_at.is_not(None),
        )
    )
    return [(code, due, done) for code, due, done in result.all()]


def compute(
    rows: Sequence[tuple[str, datetime, datetime]],
    catalog: Catalog,
    timezone: str,
    targets: Mapping[str, float],
    default_target: float,
) -> list[SopIndicator]:
    zone = ZoneInfo(timezone)
    definitions = {sop.code: sop for sop in catalog.sops}
    found: dict[str, SopIndicator] = {}
    for sop in catalog.sops:
        found[sop.code] = SopIndicator(
            sop.code, sop.number, sop.title, targets.get(sop.code, default_target)
        )
    for code, due, done in rows:
        indicator = found.get(code)
        if indicator is None:
            definition = definitions.get(code)
            indicator = found[code] = SopIndicator(
                code, None, definition.title if definition else None,
                targets.get(code, default_target),
            )  # fmt: skip
        on_time = done <= due
        for tally in (indicator.year, indicator.months[done.astimezone(zone).month - 1]):
            tally.completed += 1
            tally.on_time += on_time
    return sorted(found.values(), key=lambda i: (i.number or 1_000, i.code))
