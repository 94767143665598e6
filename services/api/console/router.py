"""Serves the console's files (`static/`, checked in as written: no build step) at
`/console/`, with headers that keep the page to its own origin: everything it loads
comes from Alur (no CDN), and no other site may frame it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC = Path(__file__).with_name("static")
PREFIX = "/console"

HEADERS = {
    b"content-security-policy": (
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        b"form-action 'self'"
    ),
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
    # Revalidated on every load (ETag): an upgrade of Alur is seen at once.
    b"cache-control": b"no-cache",
}


class ConsoleFiles:
    """StaticFiles with the console's headers."""

    def __init__(self) -> None:
        self.files = StaticFiles(directory=STATIC, html=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (key, value)
                    for key, value in message.get("headers", [])
                    if key.lower() not in HEADERS
                ]
                message["headers"] = headers + list(HEADERS.items())
            await send(message)

        await self.files(scope, receive, with_headers)


def install_console(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @app.get(PREFIX, include_in_schema=False)
    async def console() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    app.mount(f"{PREFIX}/", ConsoleFiles(), name="console")
