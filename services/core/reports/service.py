"""Who may read reports, and the use cases that gather their data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.core.catalog.service import SopNotFound
from services.core.engine.definition import Catalog, SopDefinition
from services.core.engine.state import Actor
from services.core.errors import AlurError
from services.core.reports import indicators, performance
from services.core.reports.indicators import SopIndicator
from services.core.reports.performance import PerformanceReport
from services.core.reports.periods import Period, parse
from services.core.satkers.service import Satker, SatkerNotFound
from services.core.settings import ReportSettings
from services.core.shared import Services

# The heads of a satker and its admins read its reports; so do those of a court above it.
REPORT_ROLES = frozenset({"kasubbag_ptip", "sekretaris", "ketua", "admin"})


class ReportForbidden(AlurError):
    code = "role_required"
    status = 403
    title = "Your roles do not allow this"


async def satker_for_report(
    session: AsyncSession, services: Services, actor: Actor, satker_id: str | None
) -> Satker:
    """The satker a report is about (default: the caller's), if the caller may read it."""
    target = satker_id or actor.satker
    directory = await services.directory(session, actor.satker, target)
    if target not in directory.visible_from(actor.satker):
        raise SatkerNotFound(f"No satker {target!r} among the ones you can read")
    roles = set(actor.roles) | {
        grant.role for grant in actor.acting if target in directory.visible_from(grant.satker)
    }
    if not roles & REPORT_ROLES:
        raise ReportForbidden(
            "Reports are for the heads and admins of a satker ("
            + ", ".join(sorted(REPORT_ROLES))
            + ") and of the courts above it",
            extra={"required_roles": sorted(REPORT_ROLES)},
        )
    return directory.get(target)


async def sop_performance(
    session: AsyncSession,
    services: Services,
    catalog: Catalog,
    satker: Satker,
    period: Period,
    *,
    sop: str | None,
    now: datetime,
) -> PerformanceReport:
    start, end = period.bounds(satker.timezone)
    rows = await performance.task_rows(session, satker.id, start, end, sop)
    calendar = await services.calendars.get(session, satker)
    report = performance.compute(rows, catalog, calendar, satker=satker.id, period=period, now=now)
    await performance.add_reasons(session, report.late_tasks)
    return report


async def sakip_indicators(
    session: AsyncSession,
    catalog: Catalog,
    satker: Satker,
    year: int,
    settings: ReportSettings,
) -> list[SopIndicator]:
    start, end = parse(str(year)).bounds(satker.timezone)
    rows = await indicators.completed_rows(session, satker.id, start, end)
    return indicators.compute(
        rows, catalog, satker.timezone, settings.targets, settings.default_target
    )


def sop_of(catalog: Catalog, code_or_number: str) -> SopDefinition:
    """A current SOP by code or number; `SopNotFound` otherwise."""
    for sop in catalog.sops:
        if code_or_number in (sop.code, str(sop.number), f"{sop.number:02d}"):
            return sop
    raise SopNotFound(f"No SOP {code_or_number[:64]!r} in the catalog")
