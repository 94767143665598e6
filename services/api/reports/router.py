"""`/v1/reports/*`: the papers a court is judged by, made from what Alur recorded, for
the heads and admins of a satker and of the courts above it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from services.api.deps import Context, CurrentActor, Session, Work
from services.api.problems import problem_responses
from services.core.db import utcnow
from services.core.reports import jobs, monev, pack, periods
from services.core.reports import service as reports
from services.core.reports.exports import indicator_tables, performance_tables
from services.core.reports.indicators import SopIndicator, Tally
from services.core.reports.pdf import monev_pdf
from services.core.reports.performance import Figures, PerformanceReport
from services.core.reports.periods import Period
from services.core.reports.tables import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, Table, to_csv, to_xlsx
from services.core.validation import StrictBody

router = APIRouter(prefix="/v1/reports", tags=["reports"])

Format = Literal["json", "csv", "xlsx"]
# A document's bytes, as OpenAPI describes them.
BINARY: dict[str, object] = {"schema": {"type": "string", "format": "binary"}}
# A pack of more instances than this is built by a worker, whatever its files weigh.
INLINE_PACK_INSTANCES = 200
SatkerId = Annotated[str | None, Query(max_length=64, description="Default: your satker.")]


class FiguresOut(BaseModel):
    tasks: int
    completed: int
    on_time: int = Field(description="Completed by the due date.")
    late: int = Field(description="Completed after the due date.")
    without_standard: int = Field(description="Completed; the step has no time standard.")
    open: int
    open_overdue: int
    cancelled: int
    on_time_percent: float | None = Field(description="on_time / (on_time + late) × 100.")
    median_seconds: float | None = Field(description="Working time, completed tasks.")
    p90_seconds: float | None = Field(description="Nearest-rank 90th percentile.")
    median_standard_percent: float | None = Field(
        description="Median of each completed task's working time as a share of what its "
        "standard allowed it (opening to due date): 50 is half the standard, 150 half over."
    )
    p90_standard_percent: float | None = Field(description="Nearest-rank 90th percentile.")
    escalations: dict[str, int] = Field(description="Tasks by the highest level reached.")

    @classmethod
    def of(cls, figures: Figures) -> FiguresOut:
        return cls(
            tasks=figures.tasks,
            completed=figures.completed,
            on_time=figures.on_time,
            late=figures.late,
            without_standard=figures.without_standard,
            open=figures.open,
            open_overdue=figures.open_overdue,
            cancelled=figures.cancelled,
            on_time_percent=figures.on_time_percent,
            median_seconds=figures.median_seconds,
            p90_seconds=figures.p90_seconds,
            median_standard_percent=figures.median_standard_percent,
            p90_standard_percent=figures.p90_standard_percent,
            escalations={str(level): n for level, n in sorted(figures.escalations.items())},
        )


class StepOut(BaseModel):
    step: str
    number: int | None
    activity: str | None
    lane: str | None
    standard: str | None = Field(description="The time standard as the SOP writes it.")
    figures: FiguresOut


class SopOut(BaseModel):
    sop: str
    number: int | None
    title: str | None
    instances: int = Field(description="Instances with a task opened in the period.")
    figures: FiguresOut
    steps: list[StepOut]


class LateTaskOut(BaseModel):
    task_id: str
    instance_id: str
    title: str
    sop: str
    step: str
    due_at: datetime
    completed_at: datetime | None = Field(description="Null: still open, and overdue.")
    late_seconds: float = Field(description="Working time past the due date.")
    reasons: list[str] = Field(description="Comments on the task, then its completion note.")


class PerformanceOut(BaseModel):
    satker: str
    period_from: date
    period_to: date
    generated_at: datetime
    sops: list[SopOut]
    late_tasks: list[LateTaskOut] = Field(description="The latest 500 at most.")
    late_tasks_total: int

    @classmethod
    def of(cls, report: PerformanceReport) -> PerformanceOut:
        return cls(
            satker=report.satker,
            period_from=report.period.first,
            period_to=report.period.last,
            generated_at=report.generated_at,
            sops=[
                SopOut(
                    sop=sop.code,
                    number=sop.number,
                    title=sop.title,
                    instances=sop.instances,
                    figures=FiguresOut.of(sop.figures),
                    steps=[
                        StepOut(
                            step=step.step_id,
                            number=step.number,
                            activity=step.activity,
                            lane=step.lane,
                            standard=step.standard,
                            figures=FiguresOut.of(step.figures),
                        )
                        for step in sop.steps
                    ],
                )
                for sop in report.sops
            ],
            late_tasks=[
                LateTaskOut(
                    task_id=task.task_id,
                    instance_id=task.instance_id,
                    title=task.title,
                    sop=task.sop,
                    step=task.step_id,
                    due_at=task.due_at,
                    completed_at=task.completed_at,
                    late_seconds=task.late_seconds,
                    reasons=list(task.reasons),
                )
                for task in report.late_tasks
            ],
            late_tasks_total=report.late_tasks_total,
        )


FromDate = Annotated[
    date | None, Query(alias="from", description="First local date; default 1 January.")
]
ToDate = Annotated[date | None, Query(description="Last local date; default today.")]


def _period(timezone: str, first: date | None, last: date | None, now: datetime) -> Period:
    """From `first` (default 1 January) to `last` (default today), local dates."""
    today = periods.today(timezone, now)
    return periods.between(first or today.replace(month=1, day=1), last or today)


def _tables(tables: list[Table], format: Format, name: str) -> Response:
    """A report's tables to download: the first as CSV, or all as XLSX sheets."""
    if format == "csv":
        return _download(to_csv(tables[0]), CSV_MEDIA_TYPE, f"{name}.csv")
    return _download(to_xlsx(tables), XLSX_MEDIA_TYPE, f"{name}.xlsx")


def _download(content: bytes, media_type: str, name: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


_TABLE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "JSON, or the table as CSV or XLSX (`format`).",
        "content": {CSV_MEDIA_TYPE: BINARY, XLSX_MEDIA_TYPE: BINARY},
    }
}


@router.get(
    "/sop-performance",
    response_model=PerformanceOut,
    summary="Per SOP and step: on time, late, open; durations against the standard",
    name="sop_performance_report",
    responses={**_TABLE_RESPONSES, **problem_responses(403, 404, 422)},
)
async def sop_performance(
    actor: CurrentActor,
    context: Context,
    session: Session,
    satker: SatkerId = None,
    from_: FromDate = None,
    to: ToDate = None,
    sop: Annotated[str | None, Query(max_length=64)] = None,
    format: Format = "json",
) -> PerformanceOut | Response:
    now = utcnow()
    target = await reports.satker_for_report(session, context.services, actor, satker)
    period = _period(target.timezone, from_, to, now)
    report = await reports.sop_performance(
        session, context.services, context.catalog, target, period, sop=sop, now=now
    )
    if format != "json":
        name = f"kinerja-sop-{target.id}-{period.first}-{period.last}"
        return _tables(performance_tables(report, target.timezone), format, name)
    return PerformanceOut.of(report)


class TallyOut(BaseModel):
    completed: int = Field(description="Tasks with a time standard completed in the span.")
    on_time: int
    realisation_percent: float | None = Field(description="on_time / completed × 100.")
    achievement_percent: float | None = Field(description="realisation / target × 100.")

    @classmethod
    def of(cls, tally: Tally, target: float) -> TallyOut:
        return cls(
            completed=tally.completed,
            on_time=tally.on_time,
            realisation_percent=tally.realisation,
            achievement_percent=tally.achievement(target),
        )


class IndicatorOut(BaseModel):
    sop: str
    number: int | None
    title: str | None
    target_percent: float
    year: TallyOut
    months: list[TallyOut] = Field(description="January to December (local months).")

    @classmethod
    def of(cls, indicator: SopIndicator) -> IndicatorOut:
        target = indicator.target
        return cls(
            sop=indicator.code,
            number=indicator.number,
            title=indicator.title,
            target_percent=target,
            year=TallyOut.of(indicator.year, target),
            months=[TallyOut.of(month, target) for month in indicator.months],
        )


class IndicatorsOut(BaseModel):
    satker: str
    year: int
    generated_at: datetime
    indicators: list[IndicatorOut]


@router.get(
    "/indicators",
    response_model=IndicatorsOut,
    summary="SAKIP figures: on-time realisation against target per SOP, month by month",
    name="sakip_indicators_report",
    responses={**_TABLE_RESPONSES, **problem_responses(403, 404, 422)},
)
async def sakip_indicators(
    actor: CurrentActor,
    context: Context,
    session: Session,
    satker: SatkerId = None,
    year: Annotated[int | None, Query(ge=2000, le=2999, description="Default: this year.")] = None,
    format: Format = "json",
) -> IndicatorsOut | Response:
    now = utcnow()
    target = await reports.satker_for_report(session, context.services, actor, satker)
    year = year or periods.today(target.timezone, now).year
    found = await reports.sakip_indicators(
        session, context.catalog, target, year, context.settings.reports
    )
    name = f"indikator-sakip-{target.id}-{year}"
    if format != "json":
        return _tables(indicator_tables(found, year), format, name)
    return IndicatorsOut(
        satker=target.id,
        year=year,
        generated_at=now,
        indicators=[IndicatorOut.of(indicator) for indicator in found],
    )


PeriodText = Annotated[
    str,
    Query(
        max_length=7,
        description="A year, quarter or month: `2026`, `2026-Q4`, `2026-11`.",
        examples=["2026-Q4"],
    ),
]


@router.get(
    "/monev",
    response_class=Response,
    summary="The Monev SOP form of a period, as a PDF in Indonesian",
    name="monev_report",
    responses={
        200: {"description": "The form (A4).", "content": {"application/pdf": BINARY}},
        **problem_responses(403, 404, 422),
    },
)
async def monev_report(
    actor: CurrentActor,
    context: Context,
    session: Session,
    period: PeriodText,
    satker: SatkerId = None,
) -> Response:
    now = utcnow()
    target = await reports.satker_for_report(session, context.services, actor, satker)
    parsed = periods.parse(period)
    form = await monev.monev_form(session, context.services, context.catalog, target, parsed, now)
    return _download(monev_pdf(form), "application/pdf", f"monev-sop-{target.id}-{period}.pdf")


class FollowUpCreate(StrictBody):
    sop: str = Field(max_length=64, description="SOP code (or number).")
    period: str = Field(max_length=7, description="`2026`, `2026-Q4` or `2026-11`.")
    text: str = Field(min_length=1, max_length=4000)
    satker: str | None = Field(default=None, max_length=64, description="Default: yours.")


class FollowUpPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    satker_id: str
    sop_code: str
    period: str
    text: str
    author: str
    author_name: str | None
    created_at: datetime


class FollowUpList(BaseModel):
    items: list[FollowUpPublic]


@router.post(
    "/follow-ups",
    status_code=201,
    response_model=FollowUpPublic,
    summary="Record a corrective action (tindak lanjut) on a SOP for a period",
    name="add_follow_up",
    responses=problem_responses(403, 404, 422),
)
async def add_follow_up(
    body: FollowUpCreate, actor: CurrentActor, context: Context, work: Work
) -> FollowUpPublic:
    target = await reports.satker_for_report(work.session, context.services, actor, body.satker)
    parsed = periods.parse(body.period)
    definition = reports.sop_of(context.catalog, body.sop)
    record = await monev.add_follow_up(
        work.session,
        context.services,
        actor,
        satker_id=target.id,
        sop_code=definition.code,
        period=parsed,
        text=body.text,
        now=utcnow(),
    )
    return FollowUpPublic.model_validate(record)


@router.get(
    "/follow-ups",
    response_model=FollowUpList,
    summary="Corrective actions recorded on SOPs (newest 500 at most)",
    name="list_follow_ups",
    responses=problem_responses(403, 404, 422),
)
async def list_follow_ups(
    actor: CurrentActor,
    context: Context,
    session: Session,
    satker: SatkerId = None,
    period: Annotated[str | None, Query(max_length=7)] = None,
    sop: Annotated[str | None, Query(max_length=64)] = None,
) -> FollowUpList:
    target = await reports.satker_for_report(session, context.services, actor, satker)
    label = periods.parse(period).label if period is not None else None
    code = reports.sop_of(context.catalog, sop).code if sop is not None else None
    records = await monev.follow_ups_of(session, target.id, label, code)
    return FollowUpList(items=[FollowUpPublic.model_validate(r) for r in records])


class ReportJobPublic(BaseModel):
    id: str
    kind: str = Field(description="`evidence_pack`.")
    satker: str
    period_from: date
    period_to: date
    status: Literal["queued", "running", "done", "failed"]
    progress: int = Field(description="Instances packed so far.")
    total: int = Field(description="Instances to pack (known once running).")
    size: int | None = Field(description="Bytes of the file, once done.")
    sha256: str | None = Field(description="SHA-256 of the file, once done.")
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    download: str | None = Field(description="Where to fetch the file, once done.")

    @classmethod
    def of(cls, record: Any) -> ReportJobPublic:
        # A row of `report_job` (the API names no table model).
        return cls(
            id=record.id,
            kind=record.kind,
            satker=record.satker_id,
            period_from=date.fromisoformat(record.params["from"]),
            period_to=date.fromisoformat(record.params["to"]),
            status=record.status,
            progress=record.progress,
            total=record.total,
            size=record.size,
            sha256=record.sha256,
            error=record.error,
            created_at=record.created_at,
            finished_at=record.finished_at,
            download=f"/v1/report-jobs/{record.id}/file" if record.status == "done" else None,
        )


@router.get(
    "/evidence-pack",
    summary="The AMPUH evidence pack of a period as a ZIP (202 and a job when large)",
    name="evidence_pack_report",
    response_class=Response,
    responses={
        200: {
            "description": "The pack, built while you waited.",
            "content": {"application/zip": BINARY},
        },
        202: {
            "description": "Large: a worker builds it; follow `Location`.",
            "model": ReportJobPublic,
        },
        **problem_responses(403, 404, 422, 503),
    },
)
async def evidence_pack(
    actor: CurrentActor,
    context: Context,
    session: Session,
    satker: SatkerId = None,
    from_: FromDate = None,
    to: ToDate = None,
    background: Annotated[
        bool, Query(description="Always build it by a worker (answer 202).")
    ] = False,
) -> Response:
    now = utcnow()
    target = await reports.satker_for_report(session, context.services, actor, satker)
    period = _period(target.timezone, from_, to, now)
    size = await pack.measure(session, target, period)
    limit = context.settings.reports.inline_pack_bytes
    if not background and size.file_bytes <= limit and size.instances <= INLINE_PACK_INSTANCES:
        scratch = context.settings.data_dir / "uploads" / f"pack-{context.services.new_id()}.zip"
        try:
            await pack.build(
                session, context.services, context.files, target, period, scratch, now=now
            )
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise
        name = f"paket-bukti-{target.id}-{period.first}-{period.last}.zip"
        return FileResponse(
            scratch,
            media_type="application/zip",
            filename=name,
            background=BackgroundTask(scratch.unlink, missing_ok=True),
        )
    async with context.unit() as work:
        record, job = await jobs.create_pack_job(
            work.session, context.services, actor, target, period, now
        )
        work.send(job)
    public = ReportJobPublic.of(record)
    return JSONResponse(
        public.model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/v1/report-jobs/{record.id}"},
    )


jobs_router = APIRouter(prefix="/v1/report-jobs", tags=["reports"])
JobId = Annotated[str, Path(max_length=36)]


@jobs_router.get(
    "/{job_id}",
    response_model=ReportJobPublic,
    summary="A report being built by a worker: its status and progress",
    name="get_report_job",
    responses=problem_responses(403, 404),
)
async def get_report_job(
    job_id: JobId, actor: CurrentActor, context: Context, session: Session
) -> ReportJobPublic:
    return ReportJobPublic.of(await jobs.visible_job(session, context.services, actor, job_id))


@jobs_router.get(
    "/{job_id}/file",
    response_class=StreamingResponse,
    summary="The built report's file",
    name="download_report",
    responses={
        200: {"description": "The file.", "content": {"application/zip": BINARY}},
        **problem_responses(403, 404, 409, 410, 503),
    },
)
async def download_report(
    job_id: JobId, actor: CurrentActor, context: Context, session: Session
) -> Response:
    record = await jobs.visible_job(session, context.services, actor, job_id)
    jobs.ready(record)
    chunks = await context.files.open_report(jobs.file_name(record))
    return StreamingResponse(
        chunks,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{jobs.download_name(record)}"',
            "Content-Length": str(record.size),
            "ETag": f'"{record.sha256}"',
        },
    )
