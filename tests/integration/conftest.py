"""Fixtures of the integration tests: a webhook receiver on loopback, a worker's context
whose crons and jobs the tests run by hand, and subscribing to webhooks."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from arq.connections import RedisSettings, create_pool
from arq.constants import job_key_prefix
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.db import session_factory, unit_of_work
from services.core.settings import Settings
from services.core.webhooks_out.models import WebhookSubscriptionRecord
from services.core.work import QUEUE_NAME
from services.worker.context import of, shutdown, startup
from services.worker.webhooks_out import (
    relay_outbox,
)
from tests.support import TokenFactory
from tests.webhook_support import (
    FAST,
    Handler,
    Receiver,
    Subscribe,
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), Handler)
    server.received, server.plans = [], {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[dict[str, Any]]:
    assert settings.redis.url is not None
    pool = await create_pool(
        RedisSettings.from_dsn(settings.redis.url), default_queue_name=QUEUE_NAME
    )
    worker_ctx: dict[str, Any] = {"redis": pool}
    await startup(worker_ctx)
    of(worker_ctx).settings = settings.model_copy(update={"webhooks": FAST})
    # Publish what earlier tests left in the outbox, before this test subscribes.
    await relay_outbox(worker_ctx)
    yield worker_ctx
    await shutdown(worker_ctx)
    # The attempts queued for the real worker would otherwise wait for the next test's
    # burst workers.
    ids = [i for i in await pool.zrange(QUEUE_NAME, 0, -1) if i.startswith(b"delivery:")]
    if ids:
        await pool.zrem(QUEUE_NAME, *ids)
        await pool.delete(*[job_key_prefix.encode() + i for i in ids])
    await pool.aclose()


@pytest.fixture
async def subscribe(
    client: httpx.AsyncClient, auth_headers: TokenFactory, engine: AsyncEngine
) -> AsyncIterator[Subscribe]:
    created: list[str] = []

    async def make(url: str, event_types: list[str], satker: str = "pn-tais") -> dict[str, Any]:
        response = await client.post(
            "/v1/webhook-subscriptions",
            json={"url": url, "event_types": event_types, "description": "uji"},
            headers=auth_headers(["admin"], satker=satker),
        )
        assert response.status_code == 201, response.text
        created.append(response.json()["id"])
        return dict(response.json())

    yield make
    async with unit_of_work(session_factory(engine)) as session:
        await session.execute(
            sa.delete(WebhookSubscriptionRecord).where(WebhookSubscriptionRecord.id.in_(created))  # type: ignore[attr-defined]
        )
