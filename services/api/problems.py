"""RFC 9457 problem details: every error the API answers, in one shape.

`type` is a stable URN built from the error's `code`, so clients can branch on either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.core.availability import Outages, database_unavailable, redis_unavailable
from services.core.errors import AlurError, Unavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"
# A database or Redis restart takes seconds; clients may try again this much later.
RETRY_AFTER_SECONDS = 5

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "content_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ProblemError(BaseModel):
    """One reason a request was not valid."""

    location: str = Field(examples=["body.title"])
    message: str = Field(examples=["Field required"])
    type: str = Field(examples=["missing"])


class Problem(BaseModel):
    """An RFC 9457 problem document (extension members allowed)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:alur:problem:instance_not_found"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str = Field(description="Stable: branch on it.", examples=["instance_not_found"])
    errors: list[ProblemError] | None = Field(
        default=None, description="Validation problems (`validation_error`): each reason."
    )


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:alur:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
        **(extra or {}),
    }
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=dict(headers or {})
    )


async def _alur_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AlurError)
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=getattr(exc, "headers", None),
        extra=exc.extra,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    malformed = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
    if malformed is not None:
        # Not JSON at all is a malformed request (400), unlike JSON that breaks the schema.
        position = malformed.get("loc", ("body", 0))[-1]
        reason = malformed.get("ctx", {}).get("error", "not JSON")
        return problem_response(
            request,
            status=400,
            code="malformed_json",
            title="The body is not well-formed JSON",
            detail=f"{reason} at character {position}",
        )
    if isinstance(exc.body, bytes) and any(e.get("loc", ())[:1] == ("body",) for e in exc.errors()):
        # FastAPI leaves a body unparsed (bytes) when its content type is not JSON.
        return problem_response(
            request,
            status=415,
            code="unsupported_media_type",
            title="The body must be JSON",
            detail="Send the body with Content-Type: application/json",
        )
    errors = [
        {
            "location": ".".join(str(part) for part in error.get("loc", ())),
            "message": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in exc.errors()
    ]
    summary = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
    return problem_response(
        request,
        status=422,
        code="validation_error",
        title="The request is not valid",
        detail=summary,
        extra={"errors": errors},
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    title = code.replace("_", " ").capitalize()
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No route {request.method} {request.url.path}"
    return problem_response(
        request,
        status=exc.status_code,
        code=code,
        title=title,
        detail=detail,
        headers=exc.headers,
    )


async def _dependency_error(request: Request, exc: Exception) -> JSONResponse:
    """The database or Redis is unreachable (a restart, a failover, a full pool): 503
    with `Retry-After`, the outage logged once. Any other error of those libraries is a
    fault: it goes on to the server error handler (500, logged with its traceback)."""
    if database_unavailable(exc):
        _outages(request).database.lost(exc)
        detail = "The database cannot be reached; try again shortly."
    elif redis_unavailable(exc):
        _outages(request).redis.lost(exc)
        detail = "The job queue cannot be reached; try again shortly."
    else:
        raise exc
    return await _alur_error(request, Unavailable(detail, retry_after=RETRY_AFTER_SECONDS))


def _outages(request: Request) -> Outages:
    context = getattr(request.app.state, "context", None)
    return context.outages if context is not None else Outages()


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(
        request,
        status=500,
        code="internal_error",
        title="Internal error",
        detail="The server failed to handle the request; it has been logged.",
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AlurError, _alur_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # What a lost connection raises: SQLAlchemy's wrapped driver errors and pool timeout,
    # asyncpg's unwrapped socket errors when connecting, redis-py's errors.
    for kind in (DBAPIError, PoolTimeout, OSError, RedisError):
        app.add_exception_handler(kind, _dependency_error)
    app.add_exception_handler(Exception, _unexpected_error)


_DESCRIPTIONS = {
    400: "Malformed request: a body that is not JSON (`malformed_json`), a bad header",
    401: "No valid credentials (`token_missing`, `invalid_token`, `token_expired`)",
    403: "Your roles or lanes do not allow this",
    404: "Not found, or not visible to you",
    409: "Conflicts with the current state",
    412: "`If-Match` is not the current version (`version_mismatch`)",
    413: "The body is too large (`content_too_large`)",
    415: "The body is not `application/json` (`unsupported_media_type`)",
    422: "The request is not valid (`validation_error` lists `errors`)",
    429: "Too many requests; retry after `Retry-After` seconds",
    503: "The database or Redis is unavailable (`unavailable`); retry after `Retry-After`",
}

_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "description": "The RFC 6750 challenge.",
            "schema": {"type": "string"},
        }
    },
    429: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    503: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}

PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problems a route may answer."""
    return {status: problem_response_doc(status) for status in statuses}


def problem_response_doc(status: int) -> dict[str, Any]:
    """One OpenAPI response: the `Problem` schema as `application/problem+json`."""
    doc: dict[str, Any] = {
        "description": _DESCRIPTIONS.get(status, _HTTP_CODES.get(status, "error")),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
    }
    if status in _HEADERS:
        doc["headers"] = _HEADERS[status]
    return doc
