"""`GET /metrics`: the Prometheus text format, optionally behind a bearer token."""

from __future__ import annotations

import hmac
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST

from services.api.deps import Context
from services.api.metrics.collector import scrape
from services.api.metrics.http import HttpMetrics
from services.api.openapi import answers
from services.core.identity.tokens import TokenMissing, Unauthorized

router = APIRouter(tags=["health"])

_bearer = HTTPBearer(auto_error=False, description="ALUR_METRICS__TOKEN, when it is set.")


@answers(401)
def require_metrics_token(
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    token = context.settings.metrics.token
    expected = token.get_secret_value() if token is not None else ""
    if not expected:
        return
    if credentials is None:
        raise TokenMissing("/metrics requires the metrics token (Authorization: Bearer <token>)")
    # Constant time: the comparison must not reveal how much of a guess was right.
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise Unauthorized("The metrics token is not valid")


def get_http_metrics(request: Request) -> HttpMetrics:
    return cast(HttpMetrics, request.app.state.http_metrics)


@router.get(
    "/metrics",
    summary="Prometheus metrics: HTTP, instances and tasks, outbox, monitors, backups, workers",
    name="get_metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}
    },
    dependencies=[Depends(require_metrics_token)],
)
async def metrics(
    context: Context, http: Annotated[HttpMetrics, Depends(get_http_metrics)]
) -> Response:
    return Response(await scrape(context, http), media_type=CONTENT_TYPE_LATEST)
