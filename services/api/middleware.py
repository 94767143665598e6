"""Per request: an id, bound to every log line and echoed back; the HTTP metrics; one
log line when the response is done. The request body's size limit, and the number of
requests in progress at once.

A plain ASGI middleware rather than `BaseHTTPMiddleware`: the context variables it
binds stay visible to the endpoint and its dependencies (which pass the id on to the
jobs a request enqueues), and streaming responses are not buffered.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Mapping, Sequence

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.metrics.http import UNMATCHED_ROUTE, HttpMetrics
from services.api.problems import problem_response
from services.core.logging import REQUEST_ID

log = structlog.get_logger("alur.request")

REQUEST_ID_HEADER = "X-Request-ID"
# An id from a proxy or client is kept only if it is short and plain: it goes into
# logs and response headers, so no spaces, quotes or line breaks.
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._~:/+=@-]{1,128}")
# Probes and scrapes come every few seconds; their lines would drown the rest.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestObservability:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER)
        valid = incoming is not None and _ACCEPTABLE_ID.fullmatch(incoming) is not None
        request_id = incoming if incoming is not None and valid else uuid.uuid4().hex
        # Until a response starts, a failure is what the server error handler answers.
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(**{REQUEST_ID: request_id}):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                # Routing put the matched route in the scope: its template, never the path.
                route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
                self.metrics.observe(scope["method"], route, status, elapsed)
                log.log(
                    logging.DEBUG if route in _QUIET_ROUTES else logging.INFO,
                    "request",
                    method=scope["method"],
                    route=route,
                    path=scope["path"],
                    status=status,
                    duration_ms=round(elapsed * 1000, 1),
                )


class BodyLimit:
    """Refuses a request body over `max_bytes` with 413, counting while it is read.

    A declared `Content-Length` over the limit is answered at once, before any route
    runs (so a route that never reads its body does not act on the request either);
    a chunked body is cut when the count passes the limit, which raises the 413 where
    the body is being read. (Starlette's own limiter answers a declared one in plain
    text, whatever the route would answer; every error here is a problem document.)
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: Mapping[re.Pattern[str], int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Paths that take more (an evidence file upload), with their own limit.
        self.larger = dict(larger or {})

    def _limit(self, scope: Scope) -> int:
        if scope["method"] == "POST":
            for pattern, limit in self.larger.items():
                if pattern.match(scope["path"]):
                    return limit
        return self.max_bytes

    @staticmethod
    def _too_large(limit: int) -> HTTPException:
        return HTTPException(413, f"The request body is larger than the {limit} bytes accepted")

    @staticmethod
    def _declared_too_large(scope: Scope, limit: int) -> bool:
        declared = Headers(scope=scope).get("content-length", "")
        # (More than 18 digits is over any limit, and int() refuses thousands of them.)
        return (
            declared.isascii()
            and declared.isdigit()
            and (len(declared) > 18 or int(declared) > limit)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        if self._declared_too_large(scope, limit):
            response = problem_response(
                Request(scope),
                status=413,
                code="content_too_large",
                title="Content too large",
                detail=str(self._too_large(limit).detail),
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise self._too_large(limit)
            return message

        await self.app(scope, counted, send)


class ConcurrencyLimit:
    """At most `limit` requests in progress at once; the others wait their turn, first come
    first served. Probes and scrapes never wait.

    Without it, a burst of clients all run at once on the one event loop: reads, which
    wait for nothing, finish first and come back, while writes queue for the database's
    one writer (SQLite) or the pool, each interleaved with every read in progress; their
    latency grows with the number of clients (issue 10: 64 clients, writes at p50 1.8 s,
    p99 2.3 s). Admitted in order, each request waits for those ahead of it only, and a
    write holds the writer for little more than its own work.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        metrics: HttpMetrics,
        outside: Sequence[re.Pattern[str]] = (),
    ) -> None:
        self.app = app
        # Routes that move a file's bytes at the client's pace wait for no place.
        self.outside = tuple(outside)
        # asyncio.Semaphore wakes its waiters in the order they came.
        self.gate = asyncio.Semaphore(limit)
        self.waiting = metrics.waiting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in _QUIET_ROUTES
            or any(pattern.match(scope["path"]) for pattern in self.outside)
        ):
            await self.app(scope, receive, send)
            return
        self.waiting.inc()
        try:
            await self.gate.acquire()
        finally:
            self.waiting.dec()
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.release()
