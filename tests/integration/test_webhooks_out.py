"""Outbound webhooks end to end: a real receiver on loopback, the relay, sweep and delivery
jobs run with a worker's context, signatures checked with the `standardwebhooks` library."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import jsonschema
import pytest
import sqlalchemy as sa
import standardwebhooks
from arq.jobs import Job, JobStatus
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from services.core.audit import events as audit_events
from services.core.audit import hashchain
from services.core.audit.models import OutboxRecord
from services.core.db import session_factory, unit_of_work, utcnow
from services.core.instances.models import InstanceRecord
from services.core.secrets import unseal
from services.core.settings import Settings, WebhookSettings
from services.core.webhooks_out import delivery, relay
from services.core.webhooks_out.event_types import BY_TYPE
from services.core.webhooks_out.models import WebhookDeliveryRecord, WebhookSubscriptionRecord
from services.core.work import QUEUE_NAME
from services.worker.context import of
from services.worker.webhooks_out import (
    deliver_webhook,
    relay_outbox,
    sweep_webhook_deliveries,
)
from tests.support import TokenFactory, serving
from tests.webhook_support import (
    FAST,
    PROBLEM,
    TIMEOUT,
    Receiver,
    Reply,
    Subscribe,
    deliveries,
    relay_and_deliver,
    run_due,
    start_instance,
    verify,
)

# --- subscriptions ----------------------------------------------------------------------


async def test_the_secret_is_shown_once_and_satkers_are_apart(
    client: httpx.AsyncClient, auth_headers: TokenFactory, subscribe: Subscribe
) -> None:
    created = await subscribe("http://127.0.0.1:9/hook", ["task.*"])
    assert created["secret"].startswith("whsec_")
    url = f"/v1/webhook-subscriptions/{created['id']}"
    member, admin = auth_headers(["staf_ti"]), auth_headers(["admin"])

    listed = await client.get("/v1/webhook-subscriptions", headers=member)
    assert created["id"] in [s["id"] for s in listed.json()["items"]]
    one = await client.get(url, headers=member)
    assert one.status_code == 200
    assert "secret" not in one.json()
    assert all("secret" not in s for s in listed.json()["items"])
    assert created["secret"] not in listed.text + one.text

    changed = await client.patch(url, json={"event_types": ["*"], "active": False}, headers=admin)
    assert (changed.json()["event_types"], changed.json()["active"]) == (["*"], False)
    refused = await client.patch(url, json={"active": True}, headers=member)
    assert (refused.status_code, refused.json()["code"]) == (403, "role_required")

    other = auth_headers(["admin"], satker="pn-manna")
    for response in (
        await client.get(url, headers=other),
        await client.patch(url, json={"active": True}, headers=other),
        await client.post(url + "/rotate-secret", headers=other),
        await client.delete(url, headers=other),
    ):
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == "webhook_subscription_not_found"
    other_list = await client.get("/v1/webhook-subscriptions", headers=other)
    assert created["id"] not in other_list.text

    assert (await client.delete(url, headers=admin)).status_code == 204
    assert (await client.get(url, headers=admin)).status_code == 404


async def test_unknown_event_types_are_refused(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    response = await client.post(
        "/v1/webhook-subscriptions",
        json={"url": "http://127.0.0.1:9/", "event_types": ["tsak.*"]},
        headers=auth_headers(["admin"]),
    )
    assert (response.status_code, response.json()["code"]) == (422, "webhook_event_type_unknown")


async def test_the_event_types_are_listed(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    response = await client.get("/v1/webhook-event-types", headers=auth_headers(["staf_ti"]))
    items = {item["type"]: item for item in response.json()["items"]}
    assert set(items) == set(BY_TYPE)
    started = items["instance.started"]
    assert started["schema"]["properties"]["type"] == {"const": "instance.started"}
    jsonschema.validate(started["example"], started["schema"])


async def test_private_targets_are_refused_unless_allowed(
    settings: Settings,
    auth_headers: TokenFactory,
    subscribe: Subscribe,
    receiver: Receiver,
    ctx: dict[str, Any],
    client: httpx.AsyncClient,
) -> None:
    strict = settings.model_copy(update={"webhooks": WebhookSettings()})
    async with serving(strict) as (_, api):
        for url in (
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://10.0.0.7/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:192.168.0.1]/",
        ):
            response = await api.post(
                "/v1/webhook-subscriptions",
                json={"url": url, "event_types": ["*"]},
                headers=auth_headers(["admin"]),
            )
            assert response.status_code == 422, url
            assert response.json()["code"] == "webhook_url_forbidden", url
        not_http = await api.post(
            "/v1/webhook-subscriptions",
            json={"url": "ftp://93.184.216.34/", "event_types": ["*"]},
            headers=auth_headers(["admin"]),
        )
        assert not_http.status_code == 422

    # Saved while allowed, refused at delivery once it is not: nothing is sent.
    await subscribe(receiver.base + "/private", ["instance.started"])
    of(ctx).settings = strict.model_copy(update={"webhooks": WebhookSettings(retry_schedule=[0])})
    await start_instance(client, auth_headers)
    assert await relay_and_deliver(ctx) == ["failed"]
    assert receiver.received == []
    (failed,) = await deliveries(client, auth_headers, event_type="instance.started", limit=1)
    assert failed["status"] == "failed"
    assert "127.0.0.1" in failed["last_error"]
    assert "loopback" in failed["last_error"]


# --- deliveries -------------------------------------------------------------------------


async def test_a_started_instance_arrives_signed(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    subscribe: Subscribe,
    receiver: Receiver,
    ctx: dict[str, Any],
    engine: AsyncEngine,
) -> None:
    subscription = await subscribe(receiver.base + "/in", ["instance.started"])
    instance_id = await start_instance(client, auth_headers)
    assert await relay_and_deliver(ctx) == ["succeeded"]

    (request,) = receiver.received
    payload = verify(subscription["secret"], request)
    assert (payload["type"], payload["instance_id"], payload["satker"]) == (
        "instance.started",
        instance_id,
        "pn-tais",
    )
    jsonschema.validate(payload, BY_TYPE["instance.started"].schema)
    assert request.headers["webhook-id"] == f"{payload['id']}_{subscription['id']}"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "Alur"

    (logged,) = await deliveries(client, auth_headers, subscription=subscription["id"])
    assert (logged["status"], logged["attempts"], logged["event_id"]) == (
        "succeeded",
        1,
        payload["id"],
    )
    assert [a["status_code"] for a in logged["attempt_log"]] == [200]

    # Relaying the same outbox row again (a crash before the commit) doubles nothing.
    async with unit_of_work(session_factory(engine)) as session:
        outbox_id = await session.scalar(
            sa.select(col(WebhookDeliveryRecord.outbox_id)).where(
                col(WebhookDeliveryRecord.id) == logged["id"]
            )
        )
        await session.execute(
            sa.update(OutboxRecord).where(OutboxRecord.id == outbox_id).values(published_at=None)  # type: ignore[arg-type]
        )
    assert await relay_outbox(ctx) == 1
    assert len(await deliveries(client, auth_headers, subscription=subscription["id"])) == 1
    assert await run_due(ctx) == []


async def test_retries_after_errors_and_timeouts_then_success(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    subscribe: Subscribe,
    receiver: Receiver,
    ctx: dict[str, Any],
) -> None:
    subscription = await subscribe(receiver.base + "/flaky", ["instance.started"])
    receiver.plan("/flaky", Reply(500), Reply(200, sleep=TIMEOUT * 3))
    await start_instance(client, auth_headers)
    # The schedule (0, 0, 0) makes each retry due at once.
    assert await relay_and_deliver(ctx) == ["retry in 0 s"]
    assert await run_due(ctx) == ["retry in 0 s"]
    assert await run_due(ctx) == ["succeeded"]

    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    for request in receiver.received:
        verify(subscription["secret"], request)
    (logged,) = await deliveries(client, auth_headers, subscription=subscription["id"])
    assert logged["status"] == "succeeded"
    log = logged["attempt_log"]
    assert [(a["number"], a["status_code"]) for a in log] == [(1, 500), (2, None), (3, 200)]
    assert log[0]["error"].startswith("HTTP 500")
    assert "timed out" in log[1]["error"]
    assert log[1]["duration_ms"] < TIMEOUT * 2000


async def test_dead_after_the_schedule_then_redelivered(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    subscribe: Subscribe,
    receiver: Receiver,
    ctx: dict[str, Any],
) -> None:
    subscription = await subscribe(receiver.base + "/down", ["instance.started"])
    receiver.plan("/down", Reply(503), Reply(502), Reply(500))
    await start_instance(client, auth_headers)
    assert await relay_and_deliver(ctx) == ["retry in 0 s"]
    assert await run_due(ctx) == ["retry in 0 s"]
    assert await run_due(ctx) == ["dead"]
    assert await run_due(ctx) == []
    (dead,) = await deliveries(client, auth_headers, status="dead")
    assert (dead["attempts"], dead["last_status_code"], dead["next_attempt_at"]) == (3, 500, None)

    member = await client.post(
        f"/v1/webhook-deliveries/{dead['id']}/redeliver", headers=auth_headers(["staf_ti"])
    )
    assert member.status_code == 403
    elsewhere = await client.post(
        f"/v1/webhook-deliveries/{dead['id']}/redeliver",
        headers=auth_headers(["admin"], satker="pn-manna"),
    )
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "webhook_delivery_not_found")
    redelivered = await client.post(
        f"/v1/webhook-deliveries/{dead['id']}/redeliver", headers=auth_headers(["admin"])
    )
    assert redelivered.status_code == 202, redelivered.text
    assert redelivered.json()["status"] == "pending"
    # The API queued attempt 4 for the worker (once committed); here it is run directly.
    job = Job(f"delivery:{dead['id']}:4", ctx["redis"], _queue_name=QUEUE_NAME)
    assert await job.status() is JobStatus.queued
    assert await run_due(ctx) == ["succeeded"]
    assert len(receiver.at("/down")) == 4
    (done,) = await deliveries(client, auth_headers, subscription=subscription["id"])
    assert (done["status"], done["attempts"]) == ("succeeded", 4)


async def test_retry_after_is_honoured(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    subscribe: Subscribe,
    receiver: Receiver,
    ctx: dict[str, Any],
) -> None:
    await subscribe(receiver.base + "/busy", ["instance.started"])
    receiver.plan("/busy", Reply(429, {"Retry-After": "120"}))
    await start_instance(client, auth_headers)
    assert await relay_and_deliver(ctx) == ["retry in 120 s"]
    assert await run_due(ctx) == []
    (waiting,) = await deliveries(client, auth_headers, status="pending")
    attempted = waiting["attempt_log"][0]["attempted_at"]
    wait = datetime.fromisoformat(waiting["next_attempt_at"]) - datetime.fromisoformat(attempted)
    assert timedelta(seconds=119) < wait < timedelta(seconds=122)
    assert waiting["last_status_code"] == 429


async def test_refusals_fail_at_once_and_gone_disables(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    subscribe: Subscribe,
    receiver: Receiver,
    ctx: dict[str, Any],
) -> None:
    refused = await subscribe(receiver.base + "/refuse", ["instance.started"])
    gone = await subscribe(receiver.base + "/gone", ["instance.started"])
    watcher = await subscribe(receiver.base + "/watch", ["webhook.*"])
    receiver.plan("/refuse", Reply(400))
    receiver.plan("/gone", Reply(410))
    await start_instance(client, auth_headers)
    assert sorted(await relay_and_deliver(ctx)) == ["failed", "failed"]
    assert await run_due(ctx) == []

    admin = auth_headers(["admin"])
    still = await client.get(f"/v1/webhook-subscriptions/{refused['id']}", headers=admin)
    assert still.json()["active"] is True
    disabled = (await client.get(f"/v1/webhook-subscriptions/{gone['id']}", headers=admin)).json()
    assert disabled["active"] is False
    assert "410" in disabled["disabled_reason"]

    # The disabling is itself an event, delivered to whoever subscribed to it.
    assert await relay_and_deliver(ctx) == ["succeeded"]
    (notice,) = receiver.at("/watch")
    payload = verify(watcher["secret"], notice)
    assert payload["type"] == "webhook.subscription_disabled"
    assert payload["data"]["subscription_id"] == gone["id"]
    jsonschema.validate(payload, BY_TYPE["webhook.subscription_disabled"].schema)

    # A disabled subscription receives nothing until it is switched back on.
    await start_instance(client, auth_headers)
    await relay_and_deliver(ctx)
    assert len(receiver.at("/gone")) == 1
    enabled = await client.patch(
        f"/v1/webhook-subscriptions/{gone['id']}", json={"active": True}, headers=admin
    )
    assert (enabled.json()["active"], enabled.json()["disabled_reason"]) == (True, None)


async def test_failing_for_days_disables_the_subscription(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    subscribe: Subscribe,
    receiver: Receiver,
    ctx: dict[str, Any],
    engine: AsyncEngine,
) -> None:
    subscription = await subscribe(receiver.base + "/broken", ["instance.started"])
    receiver.plan("/broken", Reply(500), Reply(500))
    await start_instance(client, auth_headers)
    assert await relay_and_deliver(ctx) == ["retry in 0 s"]
    now = utcnow()
    async with unit_of_work(session_factory(engine)) as session:
        record = await session.get(WebhookSubscriptionRecord, subscription["id"])
        assert record is not None
        assert record.failing_since is not None
        record.failing_since = now - timedelta(days=6)
    assert await run_due(ctx) == ["retry in 0 s"]
    admin = auth_headers(["admin"])
    state = await client.get(f"/v1/webhook-subscriptions/{subscription['id']}", headers=admin)
    assert state.json()["active"] is False
    assert "5 days" in state.json()["disabled_reason"]
    # The retry still pending is not sent to a disabled subscription.
    assert await run_due(ctx) == ["skipped"]
    assert len(receiver.received) == 2
    (logged,) = await deliveries(client, auth_headers, subscription=subscription["id"])
    assert (logged["status"], logged["last_error"]) == ("failed", "the subscription is disabled")


async def test_an_attempt_whose_worker_died_is_sent_again(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    subscribe: Subscribe,
    receiver: Receiver,
    ctx: dict[str, Any],
) -> None:
    subscription = await subscribe(receiver.base + "/again", ["instance.started"])
    await start_instance(client, auth_headers)
    await relay_outbox(ctx)
    (pending,) = await deliveries(client, auth_headers, subscription=subscription["id"])
    # A worker claimed attempt 1 longer ago than the lease and died before sending.
    async with unit_of_work(of(ctx).sessions) as session:
        claimed = await delivery.claim(
            session, pending["id"], 1, FAST, utcnow() - delivery.LEASE - timedelta(seconds=5)
        )
    assert claimed is not None
    # The job for attempt 1, run late (arq retries a killed worker's job), does nothing.
    assert await deliver_webhook(ctx, pending["id"], 1) == "skipped"
    assert receiver.received == []

    assert await sweep_webhook_deliveries(ctx) == 1
    assert (
        await Job(f"delivery:{pending['id']}:2", ctx["redis"], _queue_name=QUEUE_NAME).status()
        is JobStatus.queued
    )
    assert await sweep_webhook_deliveries(ctx) == 0  # already queued: not doubled
    assert await run_due(ctx) == ["succeeded"]
    (request,) = receiver.received
    verify(subscription["secret"], request)
    (logged,) = await deliveries(client, auth_headers, subscription=subscription["id"])
    assert [(a["number"], a["status_code"]) for a in logged["attempt_log"]] == [(1, None), (2, 200)]
    assert logged["attempt_log"][0]["error"] == delivery.UNFINISHED


async def test_a_rolled_back_event_is_never_sent(
    subscribe: Subscribe, receiver: Receiver, ctx: dict[str, Any], engine: AsyncEngine
) -> None:
    await subscribe(receiver.base + "/all", ["*"])
    payload = {"id": "fnd_rolled_back", "type": "monitor.down", "satker": "pn-tais"}

    async def relay_once() -> int:
        async with unit_of_work(session_factory(engine)) as other:
            return (await relay.relay_batch(other, utcnow())).published

    async with session_factory(engine)() as session, session.begin():
        session.add(
            OutboxRecord(
                satker_id="pn-tais", type="monitor.down", payload=payload, created_at=utcnow()
            )
        )
        await session.flush()
        # A relay running meanwhile does not see the uncommitted row (on SQLite, one writer
        # at a time, it waits for this transaction to end).
        relaying = asyncio.create_task(relay_once())
        await asyncio.wait([relaying], timeout=1)
        await session.rollback()
    assert await relaying == 0
    assert await relay_and_deliver(ctx) == []
    assert receiver.received == []


async def test_rotated_secrets_overlap(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    subscribe: Subscribe,
    receiver: Receiver,
    ctx: dict[str, Any],
) -> None:
    subscription = await subscribe(receiver.base + "/rotate", ["instance.started"])
    old = subscription["secret"]
    url = f"/v1/webhook-subscriptions/{subscription['id']}/rotate-secret"
    rotated = await client.post(url, headers=auth_headers(["admin"]))
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert timedelta(hours=23) < expires - utcnow() <= timedelta(hours=24)

    await start_instance(client, auth_headers)
    await relay_and_deliver(ctx)
    (during,) = receiver.received
    assert during.headers["webhook-signature"].count("v1,") == 2
    assert verify(old, during) == verify(new, during)

    # Without an overlap the old secrets stop signing at once.
    latest = await client.post(url, json={"overlap_seconds": 0}, headers=auth_headers(["admin"]))
    assert latest.json()["previous_secret_expires_at"] is None
    await start_instance(client, auth_headers)
    await relay_and_deliver(ctx)
    after = receiver.received[1]
    verify(latest.json()["secret"], after)
    for retired in (old, new):
        with pytest.raises(standardwebhooks.WebhookVerificationError):
            verify(retired, after)
    shown = await client.get(
        f"/v1/webhook-subscriptions/{subscription['id']}", headers=auth_headers(["admin"])
    )
    assert latest.json()["secret"] not in shown.text


async def test_wildcard_filters_and_payloads_match_the_event_types(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    subscribe: Subscribe,
    receiver: Receiver,
    ctx: dict[str, Any],
) -> None:
    await subscribe(receiver.base + "/tasks", ["task.*"])
    await subscribe(receiver.base + "/everything", ["*"])
    await subscribe(receiver.base + "/completed", ["instance.completed"])
    await subscribe(receiver.base + "/elsewhere", ["*"], satker="pn-manna")
    instance_id = await start_instance(client, auth_headers)
    await relay_and_deliver(ctx)

    def types(path: str) -> list[str]:
        return [r.json["type"] for r in receiver.at(path) if r.json["instance_id"] == instance_id]

    assert types("/tasks") == ["task.opened"]
    assert types("/everything") == ["instance.started", "task.opened"]
    assert types("/completed") == []
    assert receiver.at("/elsewhere") == []
    for request in receiver.at("/everything"):
        payload = request.json
        schema = BY_TYPE[payload["type"]].schema
        jsonschema.validate(payload, schema)
        assert set(payload) <= set(schema["properties"])
        assert set(payload["data"]) <= set(schema["properties"]["data"]["properties"])


async def test_every_outbox_row_matches_its_event_type(engine: AsyncEngine) -> None:
    """Whatever the suite has produced so far (instances, deadlines, monitors, backups)."""
    async with unit_of_work(session_factory(engine)) as session:
        rows = (await session.scalars(sa.select(OutboxRecord))).all()
        # As published: a finding's own payload, an instance event's composed from it.
        bodies = await relay.outbox_bodies(session, rows)
        tampered = await _tampered_trails(session)
    assert any(row.payload is None for row in rows), "instance events refer to their event"
    for row in rows:
        body = bodies[row.id]
        if body.get("id") == "fnd_rolled_back" or body.get("instance_id") in tampered:
            continue
        event = BY_TYPE[row.type]
        jsonschema.Draft202012Validator(event.schema).validate(body)
        data = event.data_schema["properties"]
        assert set(body["data"]) <= set(data), row.type


async def test_signing_secrets_are_stored_encrypted(
    subscribe: Subscribe, engine: AsyncEngine
) -> None:
    subscription = await subscribe("http://127.0.0.1:9/never", ["*"])
    async with engine.connect() as connection:
        stored = (
            await connection.execute(
                sa.text("SELECT secret FROM webhook_subscription WHERE id = :id"),
                {"id": subscription["id"]},
            )
        ).scalar_one()
    assert stored.startswith("fernet:")
    assert subscription["secret"] not in stored
    assert unseal(stored) == subscription["secret"]


async def _tampered_trails(session: AsyncSession) -> set[str]:
    """Instances whose audit trail a tamper-detection test altered on purpose."""
    tampered = set()
    for instance in (await session.scalars(sa.select(InstanceRecord))).all():
        events = await audit_events.events_of(session, instance.id)
        if not hashchain.verify_chain(
            instance.id, events, instance.event_count, instance.head_hash
        ).valid:
            tampered.add(instance.id)
    return tampered


async def test_concurrent_relays_create_each_delivery_once(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    subscribe: Subscribe,
    engine: AsyncEngine,
) -> None:
    subscription = await subscribe("http://127.0.0.1:9/never", ["*"])
    for _ in range(3):
        await start_instance(client, auth_headers)

    async def one_relay() -> int:
        async with unit_of_work(session_factory(engine)) as session:
            return (await relay.relay_batch(session, utcnow(), batch_size=2)).published

    # SQLite lets one writer through and may refuse the others ("database is locked");
    # whatever a refused relay held is taken by the next run.
    await asyncio.gather(*(one_relay() for _ in range(4)), return_exceptions=True)
    while await one_relay():
        pass
    async with unit_of_work(session_factory(engine)) as session:
        counts = (
            await session.execute(
                sa.select(col(WebhookDeliveryRecord.outbox_id), sa.func.count())
                .where(col(WebhookDeliveryRecord.subscription_id) == subscription["id"])
                .group_by(col(WebhookDeliveryRecord.outbox_id))
            )
        ).all()
    assert len(counts) >= 6  # instance.started and task.opened per instance
    assert {count for _, count in counts} == {1}
