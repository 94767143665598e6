"""The delivery pump: first attempts in batches, concurrent pumps, a crash mid-batch, and
a lease expired behind a large backlog."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from arq.jobs import Job, JobStatus
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from services.core.audit.models import OutboxRecord
from services.core.db import create_engine, session_factory, unit_of_work, utcnow
from services.core.webhooks_out import delivery, pump, relay
from services.core.webhooks_out.models import WebhookDeliveryRecord
from services.core.work import QUEUE_NAME
from services.worker.context import of
from services.worker.webhooks_out import (
    deliver_webhook,
    deliver_webhooks,
    relay_outbox,
    sweep_webhook_deliveries,
)
from tests.support import TokenFactory
from tests.webhook_support import (
    FAST,
    Receiver,
    Reply,
    Subscribe,
    deliveries,
    run_due,
    start_instance,
    verify,
)

# --- the pump: first attempts in batches -------------------------------------------------


def pumping(ctx: dict[str, Any], concurrency: int) -> None:
    """The worker's webhook settings, with room for `concurrency` attempts at once."""
    context = of(ctx)
    webhooks = context.settings.webhooks.model_copy(update={"concurrency": concurrency})
    context.settings = context.settings.model_copy(update={"webhooks": webhooks})


async def test_the_pump_sends_a_batch_and_records_every_attempt(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    subscribe: Subscribe,
    receiver: Receiver,
    ctx: dict[str, Any],
) -> None:
    good = await subscribe(receiver.base + "/batch-good", ["instance.started"])
    mixed = await subscribe(receiver.base + "/batch-mixed", ["instance.started"])
    # In order of arrival: a retry can only come after the two 500s.
    receiver.plan("/batch-mixed", Reply(400), Reply(500), Reply(500))
    for _ in range(12):
        await start_instance(client, auth_headers)
    await relay_outbox(ctx)
    # Room for 5 at a time: several claims and records, attempts overlapping. The two
    # retries are due at once (schedule 0, 0, 0): the same run makes them.
    pumping(ctx, 5)
    assert await deliver_webhooks(ctx) == 24 + 2

    assert len(receiver.at("/batch-good")) == 12
    assert len(receiver.at("/batch-mixed")) == 12 + 2
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 24
    for subscription, path in ((good, "/batch-good"), (mixed, "/batch-mixed")):
        for request in receiver.at(path):
            verify(subscription["secret"], request)
    logged = await deliveries(client, auth_headers, subscription=good["id"])
    assert [d["status"] for d in logged] == ["succeeded"] * 12
    for item in logged:
        ((number, code, duration),) = [
            (a["number"], a["status_code"], a["duration_ms"]) for a in item["attempt_log"]
        ]
        assert (number, code) == (1, 200)
        assert duration is not None
    logged = await deliveries(client, auth_headers, subscription=mixed["id"])
    assert Counter(
        (d["status"], tuple(a["status_code"] for a in d["attempt_log"])) for d in logged
    ) == {
        ("succeeded", (200,)): 9,
        ("succeeded", (500, 200)): 2,
        ("failed", (400,)): 1,
    }
    assert await deliver_webhooks(ctx) == 0
    assert await sweep_webhook_deliveries(ctx) == 0


async def test_concurrent_pumps_claim_each_delivery_once(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    subscribe: Subscribe,
    receiver: Receiver,
    ctx: dict[str, Any],
) -> None:
    shared = await subscribe(receiver.base + "/shared", ["instance.started", "task.opened"])
    for _ in range(10):
        await start_instance(client, auth_headers)
    await relay_outbox(ctx)
    context = of(ctx)
    # Nine requests at once to one receiver on a busy machine: the suite's 0.5 s timeout
    # (for the timeout tests) would now and then retry one, which is not what is tested.
    settings = context.settings.webhooks.model_copy(
        update={"timeout_seconds": 10.0, "connect_timeout_seconds": 10.0}
    )

    async def one_pump() -> int:
        # Each as in a worker process of its own: its own pool of connections.
        own = create_engine(context.settings)
        try:
            report = await pump.run(
                session_factory(own), context.webhooks_http, settings, concurrency=3
            )
        finally:
            await own.dispose()
        return report.attempts

    made = await asyncio.gather(*(one_pump() for _ in range(3)))
    # (Attempts of earlier tests' subscriptions that fell due meanwhile are made too.)
    assert sum(made) >= 20
    assert len(receiver.at("/shared")) == 20
    assert len({r.headers["webhook-id"] for r in receiver.at("/shared")}) == 20
    logged = await deliveries(client, auth_headers, subscription=shared["id"])
    assert [(d["status"], len(d["attempt_log"])) for d in logged] == [("succeeded", 1)] * 20, [
        d["attempt_log"] for d in logged if len(d["attempt_log"]) > 1
    ]


async def test_a_crash_mid_batch_loses_nothing(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    subscribe: Subscribe,
    receiver: Receiver,
    ctx: dict[str, Any],
) -> None:
    subscription = await subscribe(receiver.base + "/crash", ["instance.started"])
    # Slow answers: the worker dies with every attempt of the batch in flight.
    receiver.plan("/crash", *[Reply(200, sleep=0.3)] * 6)
    for _ in range(6):
        await start_instance(client, auth_headers)
    await relay_outbox(ctx)
    context = of(ctx)
    running = asyncio.create_task(
        pump.run(context.sessions, context.webhooks_http, context.settings.webhooks, concurrency=10)
    )
    for _ in range(1000):
        if len(receiver.at("/crash")) == 6:
            break
        await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    unfinished = await deliveries(client, auth_headers, subscription=subscription["id"])
    assert [(d["status"], d["attempts"]) for d in unfinished] == [("pending", 1)] * 6
    assert {d["attempt_log"][0]["error"] for d in unfinished} == {delivery.UNFINISHED}
    assert await sweep_webhook_deliveries(ctx) == 0  # leased: not due yet

    # The lease ran out a while ago, and no pump has run since.
    async with unit_of_work(context.sessions) as session:
        await session.execute(
            sa.update(WebhookDeliveryRecord)
            .where(col(WebhookDeliveryRecord.subscription_id) == subscription["id"])
            .values(next_attempt_at=utcnow() - timedelta(seconds=10))
        )
    # The sweep finds the expired leases; each is made again, and recorded.
    assert await sweep_webhook_deliveries(ctx) == 6
    assert await run_due(ctx) == ["succeeded"] * 6
    done = await deliveries(client, auth_headers, subscription=subscription["id"])
    assert [(d["status"], d["attempts"]) for d in done] == [("succeeded", 2)] * 6
    # At least once: the interrupted requests had arrived too.
    ids = [r.headers["webhook-id"] for r in receiver.at("/crash")]
    assert len(ids) == 12
    assert set(Counter(ids).values()) == {2}


async def test_a_lease_expired_behind_a_large_backlog_is_taken_first(
    subscribe: Subscribe, receiver: Receiver, ctx: dict[str, Any], engine: AsyncEngine
) -> None:
    died = await subscribe(receiver.base + "/died", ["monitor.down"])
    waiting = await subscribe("http://127.0.0.1:9/backlog", ["monitor.down"])
    now = utcnow()
    sessions = session_factory(engine)
    backlog = relay.SWEEP_LIMIT + 200
    async with unit_of_work(sessions) as session:
        returned = (
            await session.scalars(
                sa.insert(OutboxRecord).returning(col(OutboxRecord.id)),
                [
                    {
                        "satker_id": "pn-tais",
                        "type": "monitor.down",
                        "payload": {"id": f"fnd_backlog_{n}", "type": "monitor.down"},
                        "created_at": now,
                        "published_at": now,
                    }
                    for n in range(backlog + 1)
                ],
            )
        ).all()
        outbox_ids = [outbox_id for outbox_id in returned if outbox_id is not None]
        # First attempts due for a while (older than the lease below): the pump's.
        await session.execute(
            sa.insert(WebhookDeliveryRecord),
            [
                {
                    "subscription_id": waiting["id"],
                    "outbox_id": outbox_id,
                    "event_type": "monitor.down",
                    "payload": {"id": f"fnd_backlog_{n}", "type": "monitor.down"},
                    "next_attempt_at": now - timedelta(hours=1),
                    "created_at": now - timedelta(hours=1),
                    "updated_at": now - timedelta(hours=1),
                }
                for n, outbox_id in enumerate(outbox_ids[:-1])
            ],
        )
        session.add(
            WebhookDeliveryRecord(
                subscription_id=died["id"],
                outbox_id=outbox_ids[-1],
                event_type="monitor.down",
                payload={"id": "fnd_backlog_died", "type": "monitor.down"},
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    try:
        async with unit_of_work(sessions) as session:
            (found,) = await session.scalars(
                sa.select(col(WebhookDeliveryRecord.id)).where(
                    col(WebhookDeliveryRecord.subscription_id) == died["id"]
                )
            )
            assert found is not None
            lost = found
            # A worker claimed it longer ago than the lease, and died.
            long_ago = now - delivery.LEASE - timedelta(seconds=5)
            claimed = await delivery.claim(session, lost, 1, FAST, long_ago)
        assert claimed is not None

        # Before, the sweep read due deliveries oldest first: 1,000 of the backlog.
        assert await sweep_webhook_deliveries(ctx) == 1
        job = Job(f"delivery:{lost}:2", ctx["redis"], _queue_name=QUEUE_NAME)
        assert await job.status() is JobStatus.queued
        # A pump takes it first too, ahead of the older first attempts...
        async with unit_of_work(sessions) as session:
            (pumped,) = await delivery.claim_due(session, FAST, utcnow(), limit=1)
        assert (pumped.delivery_id, pumped.number) == (lost, 2)
        # ...and the queued job for the same attempt finds it taken.
        assert await deliver_webhook(ctx, lost, 2) == "skipped"
        outcome = await delivery.send(of(ctx).webhooks_http, pumped, FAST)
        async with unit_of_work(sessions) as session:
            assert await delivery.record(session, pumped, outcome, FAST, utcnow()) == "succeeded"
        (request,) = receiver.at("/died")
        assert request.headers["webhook-id"] == f"fnd_backlog_died_{died['id']}"
    finally:
        async with unit_of_work(sessions) as session:
            await session.execute(
                sa.delete(WebhookDeliveryRecord).where(
                    WebhookDeliveryRecord.outbox_id.in_(outbox_ids)  # type: ignore[attr-defined]
                )
            )
            await session.execute(
                sa.delete(OutboxRecord).where(OutboxRecord.id.in_(outbox_ids))  # type: ignore[union-attr]
            )
