"""Outbound webhook tests' tools: a receiver on loopback that answers as told, the
worker's crons and jobs run by hand, signature checks. (Their fixtures are in
`tests/integration/conftest.py`.)"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import standardwebhooks

from services.core.db import unit_of_work, utcnow
from services.core.settings import WebhookSettings
from services.core.webhooks_out import relay
from services.worker.context import of
from services.worker.webhooks_out import (
    deliver_webhook,
    relay_outbox,
)
from tests.support import TokenFactory

PROBLEM = "application/problem+json"
CONTENT = "konten-website"  # SOP 06, started by `pembuat_artikel`
TIMEOUT = 0.5
FAST = WebhookSettings(
    allow_private_targets=True,
    retry_schedule=[0, 0, 0],
    timeout_seconds=TIMEOUT,
    connect_timeout_seconds=TIMEOUT,
)


# --- a receiver on loopback -------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    sleep: float = 0.0


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class Receiver(ThreadingHTTPServer):
    daemon_threads = False  # joined on close: no thread outlives its test
    received: list[Request]
    plans: dict[str, list[Reply]]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def plan(self, path: str, *replies: Reply) -> None:
        self.plans.setdefault(path, []).extend(replies)

    def at(self, path: str) -> list[Request]:
        return [r for r in self.received if r.path == path]


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.received.append(Request(self.path, headers, body))
        queue = self.server.plans.get(self.path) or []
        reply = queue.pop(0) if queue else Reply()
        time.sleep(reply.sleep)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the sender gave up waiting, as it should

    def log_message(self, format: str, *args: Any) -> None:
        pass


async def run_due(ctx: dict[str, Any]) -> list[str]:
    """What the sweep and a worker do now: make every attempt that is due, once."""
    async with unit_of_work(of(ctx).sessions) as session:
        jobs = await relay.due_jobs(session, utcnow())
    return [await deliver_webhook(ctx, job.delivery_id, job.attempt) for job in jobs]


async def relay_and_deliver(ctx: dict[str, Any]) -> list[str]:
    await relay_outbox(ctx)
    return await run_due(ctx)


Subscribe = Callable[..., Awaitable[dict[str, Any]]]


async def start_instance(client: httpx.AsyncClient, auth_headers: TokenFactory) -> str:
    response = await client.post(
        "/v1/instances",
        json={"sop": CONTENT, "title": "Berita webhook"},
        headers=auth_headers(["pembuat_artikel"]),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def deliveries(
    client: httpx.AsyncClient, auth_headers: TokenFactory, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/webhook-deliveries", params=params, headers=auth_headers(["staf_ti"])
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def verify(secret: str, request: Request) -> dict[str, Any]:
    return dict(standardwebhooks.Webhook(secret).verify(request.body, request.headers))
