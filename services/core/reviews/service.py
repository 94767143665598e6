"""Use cases of the yearly review: open the reviews that fell due, read them, complete one.

Which reviews: every satker reviews each SOP it has run in Alur (at least one instance
of any version), for the SOP's current version. A satker that never started a SOP has
no figures for Alur to give its review and is not reminded of it; its first instance
puts the SOP in its cycle. The parent courts (the PT) act in a lane of their district
courts' procedures and review none of their own unless they run them themselves.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.audit.findings import record_finding
from services.core.catalog import repository as catalog_repository
from services.core.engine.definition import Catalog, SopDefinition
from services.core.engine.state import ActingRole, Actor
from services.core.errors import AlurError, Conflict, NotFound
from services.core.instances.models import InstanceRecord
from services.core.reports import performance
from services.core.reports.performance import Figures
from services.core.reports.periods import Period
from services.core.reviews.models import SopReviewRecord
from services.core.reviews.schedule import due_on, review_period
from services.core.satkers.service import Satker, SatkerDirectory
from services.core.shared import Services

# The lane that owns a SOP's review: the Kasubbag of the office whose SOPs these are.
REVIEW_ROLE = "kasubbag_ptip"
DECISIONS = ("tetap", "revisi")
Decision = Literal["tetap", "revisi"]
STATES = ("open", "completed")
MAX_LISTED = 500


class ReviewNotFound(NotFound):
    code = "review_not_found"
    title = "No such SOP review"


class ReviewClosed(Conflict):
    code = "review_closed"
    title = "The SOP review is already completed"


class ReviewForbidden(AlurError):
    code = "role_required"
    status = 403
    title = "Your roles do not allow this"


@dataclass(frozen=True)
class Due:
    """The next review of one SOP in one satker."""

    satker: Satker
    code: str
    version: int
    due_on: date
    period: tuple[date, date]


def _local(instant: datetime, satker: Satker) -> date:
    return instant.astimezone(ZoneInfo(satker.timezone)).date()


async def _last_completed(
    session: AsyncSession, satkers: Collection[str] | None, code: str | None = None
) -> dict[tuple[str, str], datetime]:
    query = (
        sa.select(
            col(SopReviewRecord.satker_id),
            col(SopReviewRecord.sop_code),
            sa.func.max(col(SopReviewRecord.completed_at)),
        )
        .where(col(SopReviewRecord.state) == "completed")
        .group_by(col(SopReviewRecord.satker_id), col(SopReviewRecord.sop_code))
    )
    if satkers is not None:
        query = query.where(col(SopReviewRecord.satker_id).in_(sorted(satkers)))
    if code is not None:
        query = query.where(col(SopReviewRecord.sop_code) == code)
    return {(s, c): at for s, c, at in (await session.execute(query)).all() if at is not None}


async def next_due(
    session: AsyncSession,
    services: Services,
    satkers: Collection[str] | None,
    now: datetime,
    *,
    code: str | None = None,
) -> list[Due]:
    """The next review of each SOP each satker (of `satkers`; None: all) has run."""
    pairs_query = sa.select(col(InstanceRecord.satker_id), col(InstanceRecord.sop_code)).distinct()
    if satkers is not None:
        pairs_query = pairs_query.where(col(InstanceRecord.satker_id).in_(sorted(satkers)))
    if code is not None:
        pairs_query = pairs_query.where(col(InstanceRecord.sop_code) == code)
    pairs = sorted((satker, sop) for satker, sop in (await session.execute(pairs_query)).all())
    if not pairs:
        return []
    current = {
        record.code: record for record in await catalog_repository.current_definitions(session)
    }
    directory = await services.directory(session, *{satker for satker, _ in pairs})
    completed = await _last_completed(session, satkers, code)
    found = []
    for satker_id, sop_code in pairs:
        record = current.get(sop_code)
        if record is None or satker_id not in directory:
            continue
        satker = directory.get(satker_id)
        definition = await services.definition(session, record.code, record.version)
        effective = definition.effective_date or _local(record.loaded_at, satker)
        last = completed.get((satker_id, sop_code))
        last_on = _local(last, satker) if last is not None else None
        today = _local(now, satker)
        found.append(
            Due(
                satker=satker,
                code=record.code,
                version=record.version,
                due_on=due_on(effective, definition.review_months, last_on),
                period=review_period(effective, definition.review_months, last_on, today),
            )
        )
    return found


async def open_due(
    session: AsyncSession,
    services: Services,
    now: datetime,
    *,
    satkers: Collection[str] | None = None,
) -> list[SopReviewRecord]:
    """Open every review that fell due by the satker's local date, with the SOP's
    figures for its period, a `sop_review.opened` finding (its outbox row tells the
    Kasubbag). A review already open, or opened meanwhile by another worker, is left."""
    rows = await session.execute(
        sa.select(col(SopReviewRecord.satker_id), col(SopReviewRecord.sop_code)).where(
            col(SopReviewRecord.state) == "open"
        )
    )
    open_now = {(satker, sop) for satker, sop in rows.all()}
    opened = []
    for due in await next_due(session, services, satkers, now):
        if (due.satker.id, due.code) in open_now or due.due_on > _local(now, due.satker):
            continue
        definition = await services.definition(session, due.code, due.version)
        figures = await snapshot(session, services, due.satker, definition, due.period, now)
        review = SopReviewRecord(
            id=services.new_id(),
            satker_id=due.satker.id,
            sop_code=due.code,
            sop_version=due.version,
            due_on=due.due_on,
            period_from=due.period[0],
            period_to=due.period[1],
            opened_at=now,
            state="open",
            performance=figures,
        )
        try:
            async with session.begin_nested():
                session.add(review)
        except IntegrityError:
            continue  # another worker opened it a moment ago
        await record_finding(
            session,
            satker_id=due.satker.id,
            type="sop_review.opened",
            subject=f"sop_review:{review.id}",
            data={
                "review_id": review.id,
                "sop": definition.code,
                "sop_number": definition.number,
                "sop_title": definition.title,
                "version": definition.version,
                "due_on": due.due_on.isoformat(),
                "on_time_percent": figures["on_time_percent"],
            },
            now=now,
        )
        opened.append(review)
    return opened


def _figures(figures: Figures) -> dict[str, Any]:
    return {
        "tasks": figures.tasks,
        "completed": figures.completed,
        "on_time": figures.on_time,
        "late": figures.late,
        "without_standard": figures.without_standard,
        "open": figures.open,
        "open_overdue": figures.open_overdue,
        "on_time_percent": figures.on_time_percent,
        "median_standard_percent": figures.median_standard_percent,
    }


async def snapshot(
    session: AsyncSession,
    services: Services,
    satker: Satker,
    definition: SopDefinition,
    period: tuple[date, date],
    now: datetime,
) -> dict[str, Any]:
    """The SOP's figures in the satker over `period` (local dates, both included), from
    the SOP performance report: the whole SOP, and per step."""
    span = Period(period[0], period[1], f"{period[0].isoformat()}/{period[1].isoformat()}")
    start, end = span.bounds(satker.timezone)
    rows = await performance.task_rows(session, satker.id, start, end, definition.code)
    calendar = await services.calendars.get(session, satker)
    report = performance.compute(
        rows,
        Catalog(roles=(), sops=(definition,)),
        calendar,
        satker=satker.id,
        period=span,
        now=now,
    )
    sop = report.sops[0] if report.sops else None
    return {
        "period_from": period[0].isoformat(),
        "period_to": period[1].isoformat(),
        "generated_at": now.isoformat(),
        "instances": sop.instances if sop else 0,
        **_figures(sop.figures if sop else Figures()),
        "late_tasks_total": report.late_tasks_total,
        "steps": [
            {
                "step": step.step_id,
                "number": step.number,
                "activity": step.activity,
                "lane": step.lane,
                "standard": step.standard,
                **_figures(step.figures),
            }
            for step in (sop.steps if sop else [])
        ],
    }


async def listing(
    session: AsyncSession,
    satker_id: str,
    *,
    state: str | None = None,
    sop: str | None = None,
) -> Sequence[SopReviewRecord]:
    """A satker's reviews, latest due first."""
    query = select(SopReviewRecord).where(col(SopReviewRecord.satker_id) == satker_id)
    if state is not None:
        query = query.where(col(SopReviewRecord.state) == state)
    if sop is not None:
        query = query.where(col(SopReviewRecord.sop_code) == sop)
    query = query.order_by(col(SopReviewRecord.due_on).desc(), col(SopReviewRecord.id))
    return (await session.scalars(query.limit(MAX_LISTED))).all()


async def find(session: AsyncSession, review_id: str) -> SopReviewRecord:
    review = await session.get(SopReviewRecord, review_id)
    if review is None:
        raise ReviewNotFound(f"No SOP review {review_id[:64]!r}")
    return review


def reviewer_grant(
    directory: SatkerDirectory, actor: Actor, satker_id: str
) -> tuple[bool, ActingRole | None]:
    """Whether the actor is the satker's Kasubbag, in their own right (True, None) or
    acting in the role (True, the grant)."""
    if REVIEW_ROLE in directory.effective_roles(actor.roles, actor.satker, satker_id):
        return True, None
    for grant in actor.acting:
        if REVIEW_ROLE in directory.effective_roles(
            frozenset({grant.role}), grant.satker, satker_id
        ):
            return True, grant
    return False, None


async def complete(
    session: AsyncSession,
    services: Services,
    actor: Actor,
    review_id: str,
    *,
    decision: Decision,
    note: str | None,
    now: datetime,
) -> SopReviewRecord:
    """The Kasubbag's decision on an open review; the next one falls due `review_months`
    after today. A `sop_review.completed` finding records it."""
    review = await find(session, review_id)
    directory = await services.directory(session, actor.satker, review.satker_id)
    if review.satker_id not in directory.visible_from(actor.satker):
        raise ReviewNotFound(f"No SOP review {review_id[:64]!r}")
    allowed, grant = reviewer_grant(directory, actor, review.satker_id)
    if not allowed:
        raise ReviewForbidden(
            f"A SOP review is completed by the satker's Kasubbag ({REVIEW_ROLE}), "
            "or whoever acts in the role",
            extra={"required_role": REVIEW_ROLE},
        )
    acting_for = grant.audit() if grant is not None else None
    # Compare and set: of two completions at once, one wins and the other is told so.
    done = await session.execute(
        sa.update(SopReviewRecord)
        .where(col(SopReviewRecord.id) == review.id, col(SopReviewRecord.state) == "open")
        .values(
            state="completed",
            completed_at=now,
            completed_by=actor.sub,
            completed_by_name=actor.name,
            acting_for=acting_for,
            decision=decision,
            note=note,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        raise ReviewClosed(
            f"The review of {review.sop_code} due {review.due_on} is already completed",
            extra={"state": review.state},
        )
    await session.refresh(review)
    await record_finding(
        session,
        satker_id=review.satker_id,
        type="sop_review.completed",
        subject=f"sop_review:{review.id}",
        data={
            "review_id": review.id,
            "sop": review.sop_code,
            "version": review.sop_version,
            "due_on": review.due_on.isoformat(),
            "decision": decision,
            "note": note,
            "completed_by": actor.sub,
            "acting_for": acting_for,
        },
        now=now,
    )
    return review


async def next_due_on(
    session: AsyncSession, services: Services, satker_id: str, code: str, now: datetime
) -> date | None:
    """When the satker's next review of the SOP falls due (None: it runs none)."""
    found = await next_due(session, services, {satker_id}, now, code=code)
    return found[0].due_on if found else None
