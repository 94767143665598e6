"""Liveness answers from the process alone; readiness checks every dependency."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.api.context import AppContext
from services.api.deps import Context
from services.core import migrate
from services.core.catalog import repository
from services.core.telemetry.worker_stats import heartbeat_ages

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 2.0


class Check(BaseModel):
    status: Literal["ok", "fail"]
    detail: str | None = None


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "fail"]
    checks: dict[str, Check]


@router.get(
    "/healthz", summary="The process is alive (checks no dependency)", name="check_liveness"
)
async def healthz() -> Liveness:
    return Liveness(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Ready to serve: database, migrations, catalog, Redis and a live worker",
    name="check_readiness",
    # The readiness report itself, not a problem: probes and operators read its checks.
    responses={503: {"model": Readiness, "description": "A dependency is not ready"}},
)
async def readyz(context: Context) -> JSONResponse:
    names = ("database", "migrations", "catalog", "redis", "worker")
    results = await asyncio.gather(
        *(_timed(check(context)) for check in (_database, _migrations, _catalog, _redis, _worker))
    )
    checks = dict(zip(names, results, strict=True))
    ready = all(check.status == "ok" for check in checks.values())
    body = Readiness(status="ok" if ready else "fail", checks=checks)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if ready else 503)


async def _timed(check: Awaitable[str | Check | None]) -> Check:
    try:
        detail = await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return Check(status="fail", detail=f"no answer within {CHECK_TIMEOUT_SECONDS} s")
    except Exception as exc:
        return Check(status="fail", detail=f"{type(exc).__name__}: {exc}")
    if isinstance(detail, Check):
        return detail
    return Check(status="ok", detail=detail)


async def _database(context: AppContext) -> str | None:
    async with context.engine.connect() as connection:
        await connection.execute(sa.text("SELECT 1"))
    return None


async def _migrations(context: AppContext) -> Check:
    current = await migrate.current_revision(context.engine)
    head = migrate.head_revision()
    if current != head:
        return Check(status="fail", detail=f"database at {current}, code expects {head}")
    return Check(status="ok", detail=head)


async def _catalog(context: AppContext) -> Check:
    async with context.sessions() as session:
        stored = await repository.count_current(session)
    expected = len(context.catalog.sops)
    if stored != expected:
        return Check(status="fail", detail=f"{stored} current SOPs stored, {expected} loaded")
    return Check(status="ok", detail=f"{expected} SOPs")


async def _redis(context: AppContext) -> str | None:
    await context.redis.ping()
    return None


async def _worker(context: AppContext) -> Check:
    """Workers beat into Redis (every ALUR_WORKER__HEARTBEAT_SECONDS) while they can work;
    no fresh beat means deadlines, escalations and automated steps have stopped."""
    health = context.settings.health
    if not health.require_worker:
        return Check(status="ok", detail="not required (ALUR_HEALTH__REQUIRE_WORKER=false)")
    ages = await heartbeat_ages(context.redis)
    if not ages:
        return Check(status="fail", detail="no worker heartbeat")
    newest = ages[0]
    if newest > health.worker_stale_seconds:
        return Check(
            status="fail",
            detail=f"newest worker heartbeat is {newest:.0f} s old "
            f"(stale after {health.worker_stale_seconds} s)",
        )
    return Check(status="ok", detail=f"newest heartbeat {newest:.0f} s old")
