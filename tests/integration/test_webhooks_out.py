"""Outbound webhooks end to end: a real receiver on loopback, the relay, sweep and delivery
jobs run with a worker's context, signatures checked with the `standardwebhooks` library."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jsonschema
import pytest
import sqlalchemy as sa
import standardwebhooks
from arq.connections import RedisSettings, create_pool
from arq.constants import job_key_prefix
from arq.jobs import Job, JobStatus
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from services.core.audit import events as audit_events
from services.core.audit import hashchain
from services.core.audit.models import OutboxRecord
from services.core.db import create_engine, session_factory, unit_of_work, utcnow
from services.core.instances.models import InstanceRecord
from services.core.secrets import unseal
from services.core.settings import Settings, WebhookSettings
from services.core.webhooks import delivery, pump, relay
from services.core.webhooks.catalogue import BY_TYPE
from services.core.webhooks.models import WebhookDeliveryRecord, WebhookSubscriptionRecord
from services.core.work import QUEUE_NAME
from services.worker.context import of, shutdown, startup
from services.worker.webhooks import (
    deliver_webhook,
    deliver_webhooks,
    relay_outbox,
    sweep_webhook_deliveries,
)
from tests.conftest import TokenFactory, serving

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


# --- a worker's context, and what its crons and jobs do ---------------------------------


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


async def run_due(ctx: dict[str, Any]) -> list[str]:
    """What the sweep and a worker do now: make every attempt that is due, once."""
    async with unit_of_work(of(ctx).sessions) as session:
        jobs = await relay.due_jobs(session, utcnow())
    return [await deliver_webhook(ctx, job.delivery_id, job.attempt) for job in jobs]


async def relay_and_deliver(ctx: dict[str, Any]) -> list[str]:
    await relay_outbox(ctx)
    return await run_due(ctx)


Subscribe = Callable[..., Awaitable[dict[str, Any]]]


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


async def test_the_event_catalogue(client: httpx.AsyncClient, auth_headers: TokenFactory) -> None:
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


async def test_wildcard_filters_and_payloads_match_the_catalogue(
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


async def test_every_outbox_row_matches_the_catalogue(engine: AsyncEngine) -> None:
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
    settings = context.settings.webhooks

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
    assert sum(made) == 20
    assert len(receiver.at("/shared")) == 20
    assert len({r.headers["webhook-id"] for r in receiver.at("/shared")}) == 20
    logged = await deliveries(client, auth_headers, subscription=shared["id"])
    assert [(d["status"], len(d["attempt_log"])) for d in logged] == [("succeeded", 1)] * 20


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
