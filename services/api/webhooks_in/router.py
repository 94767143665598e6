"""Inbound webhooks: the signed `POST /v1/hooks/{source}`, hook sources and their log."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.deps import Admin, Context, Session, Work
from services.api.problems import problem_responses
from services.api.webhooks_in.schemas import (
    HookMessageList,
    HookMessagePublic,
    HookReceipt,
    HookSourceCreate,
    HookSourceCreated,
    HookSourceList,
    HookSourcePublic,
)
from services.core.db import utcnow
from services.core.engine.state import Actor
from services.core.webhooks_in import service as hooks
from services.core.webhooks_in.jobs import InboundMessageJob
from services.core.webhooks_in.processing import CorrelationNotice, SippUpgradeNotice
from services.core.webhooks_in.service import MessageStatus

log = structlog.get_logger(__name__)

router = APIRouter(tags=["webhooks (inbound)"])

WebhookHeader = Annotated[str | None, Header(description="Standard Webhooks header.")]

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        SippUpgradeNotice.model_json_schema(),
                        CorrelationNotice.model_json_schema(),
                    ]
                }
            }
        },
    }
}


@router.post(
    "/v1/hooks/{source}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=HookReceipt,
    summary="Receive a signed notice (Standard Webhooks)",
    name="receive_hook",
    description="The body is checked against `webhook-signature` with the source's secret, "
    "stored, answered at once, and acted on by a worker. A repeated `webhook-id` answers "
    "200 `duplicate` and has no further effect.",
    openapi_extra=_BODY,
    responses={
        200: {"model": HookReceipt, "description": "A repeated webhook-id."},
        # 503: the message is stored in a unit of work of the handler's own.
        **problem_responses(400, 401, 404, 413, 503),
    },
)
async def receive(
    source: str,
    request: Request,
    context: Context,
    webhook_id: WebhookHeader = None,
    webhook_timestamp: WebhookHeader = None,
    webhook_signature: WebhookHeader = None,
) -> JSONResponse:
    # The raw bytes are what was signed; the headers are read from `request` (declared
    # above only so OpenAPI shows them, and so their absence is the signature's problem).
    body = await request.body()
    async with context.unit() as work:
        receipt = await hooks.receive(work.session, source, request.headers, body, utcnow())
        # Queued once committed, when the worker can read the message. A lost one is not
        # lost work: the resend cron picks up any message left `received`.
        if receipt.status == MessageStatus.RECEIVED:
            work.send(InboundMessageJob(receipt.message_id))
    if receipt.duplicate:
        return JSONResponse({"id": receipt.message_id, "status": "duplicate"}, status_code=200)
    return JSONResponse({"id": receipt.message_id, "status": receipt.status}, status_code=202)


async def _visible(context: Context, session: AsyncSession, actor: Actor) -> set[str]:
    return (await context.services.directory(session)).visible_from(actor.satker)


@router.post(
    "/v1/hook-sources",
    status_code=status.HTTP_201_CREATED,
    response_model=HookSourceCreated,
    summary="Register a sender of inbound webhooks (admin); its secret is shown once",
    name="create_hook_source",
    responses=problem_responses(404, 409),
)
async def create_source(
    body: HookSourceCreate, actor: Admin, context: Context, work: Work
) -> HookSourceCreated:
    record, secret = await hooks.create_source(
        work.session,
        name=body.name,
        kind=body.kind,
        satkers=body.satkers,
        description=body.description,
        allowed=await _visible(context, work.session, actor),
        created_by=actor.sub,
        now=utcnow(),
    )
    return HookSourceCreated(**HookSourcePublic.model_validate(record).model_dump(), secret=secret)


@router.get(
    "/v1/hook-sources",
    response_model=HookSourceList,
    summary="Hook sources whose satkers you administer (admin)",
    name="list_hook_sources",
)
async def list_sources(actor: Admin, context: Context, session: Session) -> HookSourceList:
    records = await hooks.list_sources(session, await _visible(context, session, actor))
    return HookSourceList(items=[HookSourcePublic.model_validate(r) for r in records])


@router.get(
    "/v1/hook-sources/{name}",
    response_model=HookSourcePublic,
    summary="One hook source (admin)",
    name="get_hook_source",
    responses=problem_responses(404),
)
async def get_source(
    name: str, actor: Admin, context: Context, session: Session
) -> HookSourcePublic:
    source = await hooks.get_source(session, name, await _visible(context, session, actor))
    return HookSourcePublic.model_validate(source)


@router.delete(
    "/v1/hook-sources/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Stop accepting a source's messages (admin); its log stays readable",
    name="delete_hook_source",
    responses=problem_responses(404),
)
async def delete_source(name: str, actor: Admin, context: Context, work: Work) -> Response:
    visible = await _visible(context, work.session, actor)
    await hooks.delete_source(work.session, name, visible, utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/v1/hook-messages",
    response_model=HookMessageList,
    summary="Inbound messages of your sources, newest first (admin)",
    name="list_hook_messages",
)
async def list_messages(
    actor: Admin,
    context: Context,
    session: Session,
    source: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[MessageStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    records = await hooks.list_messages(
        session, await _visible(context, session, actor), source=source, status=status, limit=limit
    )
    return {"items": [HookMessagePublic.model_validate(r) for r in records]}
