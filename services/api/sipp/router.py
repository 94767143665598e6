"""SIPP backup and sync checks (SOP 10): results, and per-satker configuration."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.api.deps import Admin, Context, CurrentActor, Session, Work
from services.api.problems import problem_responses
from services.core.db import utcnow
from services.core.satkers.service import SatkerNotFound
from services.core.sipp import service as sipp
from services.core.sipp.config import SippCheckConfig

router = APIRouter(tags=["sipp"])


class BackupCheckPublic(BaseModel):
    id: int
    satker: str
    day: date
    checked_at: datetime
    ok: bool
    reasons: list[dict[str, Any]]
    evidence: dict[str, Any]
    instance_id: str | None


class BackupCheckList(BaseModel):
    items: list[BackupCheckPublic]


@router.get(
    "/v1/backup-checks",
    response_model=BackupCheckList,
    summary="Results of the SIPP backup and sync checks, newest first",
    responses=problem_responses(401, 404),
)
async def list_backup_checks(
    actor: CurrentActor,
    context: Context,
    session: Session,
    satker: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> BackupCheckList:
    directory = await context.services.directory(session)
    visible = directory.visible_from(actor.satker)
    if satker is not None and satker not in visible:
        raise SatkerNotFound(f"No satker {satker!r}")
    records = await sipp.list_checks(session, [satker] if satker else sorted(visible), limit=limit)
    return BackupCheckList(
        items=[
            BackupCheckPublic(
                id=r.id or 0,
                satker=r.satker_id,
                day=r.day,
                checked_at=r.checked_at,
                ok=r.ok,
                reasons=r.reasons,
                evidence=r.evidence,
                instance_id=r.instance_id,
            )
            for r in records
        ]
    )


async def _own(context: Context, session: Any, actor: CurrentActor, satker_id: str) -> None:
    directory = await context.services.directory(session)
    if satker_id not in directory.visible_from(actor.satker):
        raise SatkerNotFound(f"No satker {satker_id!r}")


@router.get(
    "/v1/satkers/{satker_id}/sipp-config",
    response_model=SippCheckConfig,
    summary="Where the satker's SIPP backups, sync log and database are",
    responses=problem_responses(401, 403, 404),
)
async def get_sipp_config(
    satker_id: str, actor: Admin, context: Context, session: Session
) -> SippCheckConfig:
    await _own(context, session, actor, satker_id)
    config = await sipp.get_config(session, satker_id)
    if config is None:
        raise SatkerNotFound(f"Satker {satker_id!r} has no SIPP check configuration")
    return config


@router.put(
    "/v1/satkers/{satker_id}/sipp-config",
    response_model=SippCheckConfig,
    summary="Set the satker's SIPP check configuration (admin)",
    responses=problem_responses(401, 403, 404, 422),
)
async def put_sipp_config(
    satker_id: str, body: SippCheckConfig, actor: Admin, context: Context, work: Work
) -> SippCheckConfig:
    await _own(context, work.session, actor, satker_id)
    await sipp.put_config(work.session, satker_id, body, utcnow())
    return body
