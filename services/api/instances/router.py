"""Instances: start, list, read, move forward (transitions), cancel, comment, audit."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.api.deps import Context, CurrentActor, Session, Work
from services.api.instances.schemas import (
    AuditReport,
    CancelCreate,
    CommentCreate,
    EventPage,
    EventPublic,
    InstanceCreate,
    InstancePage,
    InstancePublic,
    InstanceSummary,
    TransitionCreate,
    instance_json,
    instance_public,
)
from services.api.problems import problem_responses
from services.core.db import statements_stand_alone, utcnow
from services.core.engine.definition import StepKind
from services.core.engine.errors import TaskNotFound
from services.core.engine.machine import open_task_of_step
from services.core.engine.migration import MigrationForbidden
from services.core.engine.state import (
    ADMIN_ROLE,
    Actor,
    Cancel,
    Command,
    Comment,
    CompleteTask,
    RecordExternal,
)
from services.core.errors import AlurError
from services.core.files import service as files
from services.core.instances import migration as migrations
from services.core.instances import queries
from services.core.instances import service as instances
from services.core.instances.service import Applied, InstanceView
from services.core.validation import Instant, StrictBody

router = APIRouter(prefix="/v1/instances", tags=["instances"])

CommandFactory = Callable[[InstanceView, Actor, list[str]], Command]

IdempotencyKey = Annotated[
    str | None,
    Header(max_length=200, description="Replays the first response for a repeated key."),
]
IfMatch = Annotated[str | None, Header(description="The ETag of the instance as you read it.")]


class InvalidIfMatch(AlurError):
    code = "invalid_if_match"
    status = 400
    title = "If-Match is not an ETag of this API"


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    # ASCII digits only (str.isdigit also takes "²"), and few enough for int().
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise InvalidIfMatch(f"If-Match {value[:40]!r} is not an ETag such as '\"3\"'")
    return int(text)


def _respond(
    context: Context, work: Work, applied: Applied, response: Response, now: datetime
) -> InstancePublic:
    work.send(*applied.queued_jobs())
    response.headers["ETag"] = etag(applied.view.state.version)
    return instance_public(applied.view, context.services.roles, now)


async def _command(
    context: Context,
    actor: Actor,
    instance_id: str,
    make: CommandFactory,
    if_match: str | None,
    evidence: Sequence[str] = (),
) -> Response:
    """Apply one command to the instance and answer its new state (with the ETag).

    The request's unit of work, as the `Work` dependency gives it, without a generator
    dependency's cost on the busiest endpoints. The answer is the `InstancePublic` JSON,
    written directly."""
    now = utcnow()
    async with context.unit() as work:
        if any(files.is_file_id(reference) for reference in evidence):
            # The files a transition names as its evidence are this instance's.
            await files.require_attached(work.session, instance_id, evidence)
        else:
            # Applying a command writes one statement: no transaction block needed.
            statements_stand_alone(work.session)
        applied = await instances.apply(
            work.session,
            context.services,
            actor,
            instance_id,
            make,
            if_match=parse_if_match(if_match),
            now=now,
        )
        work.send(*applied.queued_jobs())
    return Response(
        instance_json(applied.view, context.services.roles, now),
        media_type="application/json",
        headers={"ETag": etag(applied.view.state.version)},
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=InstancePublic,
    summary="Start a SOP",
    name="start_instance",
    responses=problem_responses(403, 404, 409),
)
async def start(
    body: InstanceCreate,
    actor: CurrentActor,
    context: Context,
    work: Work,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> InstancePublic | JSONResponse:
    now = utcnow()
    if idempotency_key is not None:
        replay = await instances.claim_idempotency_key(
            work.session,
            satker_id=actor.satker,
            principal=actor.sub,
            key=idempotency_key,
            body_hash=instances.request_hash(body.model_dump(mode="json")),
            now=now,
        )
        if replay is not None:
            return JSONResponse(
                replay,
                status_code=status.HTTP_201_CREATED,
                headers={"Idempotent-Replayed": "true", "ETag": etag(replay["version"])},
            )
    applied = await instances.start_instance(
        work.session,
        context.services,
        actor,
        sop=body.sop,
        title=body.title,
        entry_point=body.entry_point,
        context=body.context,
        satker=body.satker,
        started_at=body.started_at,
        now=now,
    )
    public = _respond(context, work, applied, response, now)
    response.headers["Location"] = f"/v1/instances/{public.id}"
    if idempotency_key is not None:
        await instances.store_idempotent_response(
            work.session,
            satker_id=actor.satker,
            principal=actor.sub,
            key=idempotency_key,
            status_code=status.HTTP_201_CREATED,
            response=public.model_dump(mode="json"),
        )
    return public


@router.get(
    "",
    response_model=InstancePage,
    summary="Instances you can see, newest first",
)
async def list_instances(
    actor: CurrentActor,
    context: Context,
    session: Session,
    sop: str | None = None,
    state: Annotated[str | None, Query(pattern="^(active|completed|cancelled)$")] = None,
    satker: str | None = None,
    overdue: bool | None = None,
    lane: str | None = None,
    started_from: Instant | None = None,
    started_to: Instant | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 50,
) -> InstancePage:
    directory = await context.services.directory(session, actor.satker)
    records, next_cursor = await queries.list_instances(
        session,
        directory,
        actor,
        queries.InstanceFilter(
            sop=sop,
            state=state,
            satker=satker,
            overdue=overdue,
            lane=lane,
            started_from=started_from,
            started_to=started_to,
        ),
        cursor=cursor,
        limit=limit,
        now=utcnow(),
    )
    return InstancePage(
        items=[
            InstanceSummary(
                id=r.id,
                sop=r.sop_code,
                sop_version=r.sop_version,
                satker=r.satker_id,
                title=r.title,
                status=r.status,
                version=r.version,
                started_at=r.started_at,
                ended_at=r.ended_at,
                due_at=r.due_at,
                created_by=r.created_by,
            )
            for r in records
        ],
        next_cursor=next_cursor,
    )


@router.get(
    "/{instance_id}",
    response_model=InstancePublic,
    summary="One instance with its tasks and deadlines",
    responses=problem_responses(404),
)
async def get_instance(
    instance_id: str, actor: CurrentActor, context: Context, session: Session, response: Response
) -> InstancePublic:
    view = await instances.get_view(session, context.services, actor, instance_id)
    response.headers["ETag"] = etag(view.state.version)
    return instance_public(view, context.services.roles, utcnow())


def _transition(body: TransitionCreate) -> CommandFactory:
    def make(view: InstanceView, actor: Actor, ids: list[str]) -> Command:
        if body.step is not None:
            task = open_task_of_step(view.definition, view.state, body.step)
        else:
            assert body.task is not None
            found = view.state.task(body.task)
            if found is None:
                raise TaskNotFound(body.task)
            task = found
        if task.kind is StepKind.EXTERNAL:
            return RecordExternal(
                actor=actor,
                task_id=task.id,
                note=body.note,
                evidence=tuple(body.evidence),
                outcome=body.outcome,
                new_task_ids=ids,
            )
        return CompleteTask(
            actor=actor,
            task_id=task.id,
            outcome=body.outcome,
            note=body.note,
            evidence=tuple(body.evidence),
            new_task_ids=ids,
        )

    return make


@router.post(
    "/{instance_id}/transitions",
    response_model=InstancePublic,
    summary="Complete an open task (or record an external step) and move the instance on",
    name="complete_task",
    # 503: the command opens its own unit of work (no Session dependency to say so).
    responses=problem_responses(400, 403, 404, 409, 412, 422, 503),
)
async def transition(
    instance_id: str,
    body: TransitionCreate,
    actor: CurrentActor,
    context: Context,
    if_match: IfMatch = None,
) -> Response:
    return await _command(
        context, actor, instance_id, _transition(body), if_match, evidence=body.evidence
    )


@router.post(
    "/{instance_id}/cancel",
    response_model=InstancePublic,
    summary="Cancel the instance and its open tasks",
    name="cancel_instance",
    responses=problem_responses(400, 403, 404, 409, 412, 503),
)
async def cancel(
    instance_id: str,
    body: CancelCreate,
    actor: CurrentActor,
    context: Context,
    if_match: IfMatch = None,
) -> Response:
    def cancel_it(_view: InstanceView, acting: Actor, _ids: list[str]) -> Command:
        return Cancel(actor=acting, reason=body.reason)

    return await _command(context, actor, instance_id, cancel_it, if_match)


@router.post(
    "/{instance_id}/comments",
    response_model=InstancePublic,
    summary="Add a comment to the instance's audit trail",
    name="add_comment",
    responses=problem_responses(404, 409, 422, 503),
)
async def comment(
    instance_id: str,
    body: CommentCreate,
    actor: CurrentActor,
    context: Context,
) -> Response:
    def comment_on(_view: InstanceView, acting: Actor, _ids: list[str]) -> Command:
        return Comment(
            actor=acting, text=body.text, task_id=body.task, kind=body.kind,
            evidence=tuple(body.evidence),
        )  # fmt: skip

    return await _command(context, actor, instance_id, comment_on, None, evidence=body.evidence)


@router.get(
    "/{instance_id}/events",
    response_model=EventPage,
    summary="The instance's audit trail, oldest first",
    name="list_instance_events",
    responses=problem_responses(404),
)
async def events(
    instance_id: str, actor: CurrentActor, context: Context, session: Session
) -> EventPage:
    records = await instances.events(session, context.services, actor, instance_id)
    return EventPage(items=[EventPublic.of(record) for record in records])


@router.get(
    "/{instance_id}/audit",
    response_model=AuditReport,
    summary="Verify the instance's hash-chained audit trail",
    name="verify_instance_audit",
    responses=problem_responses(404),
)
async def audit(
    instance_id: str, actor: CurrentActor, context: Context, session: Session
) -> AuditReport:
    report = await instances.verify(session, context.services, actor, instance_id)
    return AuditReport(
        instance_id=report.instance_id,
        valid=report.valid,
        events=report.events,
        problems=report.problems,
    )


class MigrationCreate(StrictBody):
    version: int = Field(ge=1, le=1_000_000, description="The SOP version to move to.")
    step_map: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=64)]] = (
        Field(
            default_factory=dict,
            max_length=500,
            description="Old step id -> new step id; a step missing here keeps its id.",
        )
    )
    accept_lane_changes: bool = Field(
        default=False, description="Allow tasks to move to a step of another lane."
    )
    dry_run: bool = Field(default=False, description="Only say what would happen.")


class TaskMovePublic(BaseModel):
    task_id: str
    status: str
    from_step: str
    to_step: str | None
    from_lane: str
    to_lane: str | None
    verdict: str = Field(
        description="`same`, `mapped`, `lane_changed` (refused unless accepted), "
        "`no_step` (refused: map it), `left` (a cancelled task with no step: kept)."
    )


class MigrationPublic(BaseModel):
    instance_id: str
    from_version: int
    to_version: int
    dry_run: bool
    allowed: bool
    problems: list[str]
    moves: list[TaskMovePublic]
    instance: InstancePublic | None = Field(description="The instance after; null in a dry run.")


@router.post(
    "/{instance_id}/migrate",
    response_model=MigrationPublic,
    summary="Move the instance to another version of its SOP (admins; dry_run first)",
    name="migrate_instance",
    responses=problem_responses(403, 404, 409, 422, 503),
)
async def migrate_instance(
    instance_id: Annotated[str, Path(max_length=36)],
    body: MigrationCreate,
    actor: CurrentActor,
    context: Context,
    work: Work,
    response: Response,
) -> MigrationPublic:
    now = utcnow()
    done = await migrations.migrate(
        work.session, context.services, actor, instance_id, version=body.version,
        step_map=body.step_map, accept_lane_changes=body.accept_lane_changes,
        dry_run=body.dry_run, now=now,
    )  # fmt: skip
    plan = done.plan
    public = None
    if done.applied is not None:
        public = instance_public(done.applied.view, context.services.roles, now)
        response.headers["ETag"] = etag(done.applied.view.state.version)
    return MigrationPublic(
        instance_id=plan.instance_id,
        from_version=plan.from_version,
        to_version=plan.to_version,
        dry_run=body.dry_run,
        allowed=plan.allowed,
        problems=list(plan.problems),
        moves=[TaskMovePublic(**dataclasses.asdict(move)) for move in plan.moves],
        instance=public,
    )


class BatchMigrationCreate(MigrationCreate):
    sop: str = Field(max_length=64, description="SOP code.")
    from_version: int = Field(ge=1, le=1_000_000, description="The version to move from.")
    satker: str | None = Field(
        default=None, max_length=64, description="Only this satker and those below it."
    )
    limit: int = Field(default=200, ge=1, le=1000, description="Instances this call takes.")


class BatchItem(BaseModel):
    instance_id: str
    migrated: bool
    allowed: bool
    problems: list[str]
    code: str | None = Field(description="The problem's code when it was refused.")


class BatchMigrationPublic(BaseModel):
    sop: str
    from_version: int
    to_version: int
    dry_run: bool
    total: int = Field(description="Active instances at `from_version` in scope.")
    items: list[BatchItem] = Field(description="The oldest `limit` of them.")
    migrated: int
    refused: int


@router.post(
    "/migrate",
    response_model=BatchMigrationPublic,
    summary="Move every running instance of a SOP version to another version (admins)",
    name="migrate_instances",
    responses=problem_responses(403, 404, 422, 503),
)
async def migrate_instances(
    body: BatchMigrationCreate, actor: CurrentActor, context: Context
) -> BatchMigrationPublic:
    """Each instance in a transaction of its own: one that is refused (or changed by
    someone meanwhile) leaves the others to go on; call again for the next `limit`."""
    if ADMIN_ROLE not in actor.roles:
        raise MigrationForbidden("only an admin may migrate instances to another version")
    async with context.unit(read_only=True) as work:
        ids, total = await migrations.candidates(
            work.session, context.services, actor, body.sop, body.from_version,
            satker=body.satker, limit=body.limit,
        )  # fmt: skip
    items = []
    for instance_id in ids:
        try:
            async with context.unit() as work:
                done = await migrations.migrate(
                    work.session, context.services, actor, instance_id, version=body.version,
                    step_map=body.step_map, accept_lane_changes=body.accept_lane_changes,
                    dry_run=body.dry_run, now=utcnow(),
                )  # fmt: skip
        except AlurError as refused:
            problems = refused.extra.get("problems")
            items.append(BatchItem(
                instance_id=instance_id, migrated=False, allowed=False,
                problems=list(problems) if isinstance(problems, list) else [refused.detail],
                code=refused.code,
            ))  # fmt: skip
            continue
        items.append(BatchItem(
            instance_id=instance_id, migrated=done.applied is not None,
            allowed=done.plan.allowed, problems=list(done.plan.problems), code=None,
        ))  # fmt: skip
    return BatchMigrationPublic(
        sop=body.sop,
        from_version=body.from_version,
        to_version=body.version,
        dry_run=body.dry_run,
        total=total,
        items=items,
        migrated=sum(item.migrated for item in items),
        refused=sum(not item.allowed for item in items),
    )
