"""SIPP backup and sync checks (SOP 10): results, and per-satker configuration."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import (
    Admin,
    Context,
    CurrentActor,
    Session,
    Work,
    satker_in_scope,
    visible_satkers,
)
from services.api.problems import problem_responses
from services.core.db import utcnow
from services.core.errors import NotFound
from services.core.sipp import service as sipp
from services.core.sipp.config import SippCheckConfig

router = APIRouter(tags=["sipp"])


class SippConfigNotFound(NotFound):
    code = "sipp_config_not_found"
    title = "No SIPP check configuration"


class BackupCheckPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    satker: str = Field(validation_alias="satker_id")
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
    responses=problem_responses(404),
)
async def list_backup_checks(
    actor: CurrentActor,
    context: Context,
    session: Session,
    satker: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> BackupCheckList:
    if satker is not None:
        await satker_in_scope(context, session, actor, satker)
        scope = [satker]
    else:
        scope = sorted(await visible_satkers(context, session, actor))
    records = await sipp.list_checks(session, scope, limit=limit)
    return BackupCheckList(items=[BackupCheckPublic.model_validate(r) for r in records])


@router.get(
    "/v1/satkers/{satker_id}/sipp-config",
    response_model=SippCheckConfig,
    summary="Where the satker's SIPP backups, sync log and database are",
    responses=problem_responses(404),
)
async def get_sipp_config(
    satker_id: str, actor: Admin, context: Context, session: Session
) -> SippCheckConfig:
    await satker_in_scope(context, session, actor, satker_id)
    config = await sipp.get_config(session, satker_id)
    if config is None:
        raise SippConfigNotFound(f"Satker {satker_id!r} has no SIPP check configuration")
    return config


@router.put(
    "/v1/satkers/{satker_id}/sipp-config",
    response_model=SippCheckConfig,
    summary="Set the satker's SIPP check configuration (admin)",
    responses=problem_responses(404),
)
async def put_sipp_config(
    satker_id: str, body: SippCheckConfig, actor: Admin, context: Context, work: Work
) -> SippCheckConfig:
    await satker_in_scope(context, work.session, actor, satker_id)
    await sipp.put_config(work.session, satker_id, body, utcnow())
    return body
