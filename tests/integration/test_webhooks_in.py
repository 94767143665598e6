"""Inbound webhooks: SATGAS SIPP's upgrade notices start SOP 09, the high court's messages
complete the external steps they name. Requests are signed with the `standardwebhooks`
library, an implementation independent of Alur's."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks.webhooks import Webhook

from services.core.catalog.loader import load_catalog
from services.core.db import session_factory, unit_of_work
from services.core.secrets import unseal
from services.core.settings import PROJECT_ROOT, Settings
from services.core.shared import Services
from services.core.webhooks_in import processing
from services.core.webhooks_in import service as hooks
from tests.support import TokenFactory
from tests.workers import run_burst

PROBLEM = "application/problem+json"
TARGETS = ["pn-bengkulu", "pn-manna"]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _add_source(
    client: httpx.AsyncClient, auth_headers: TokenFactory, kind: str, satkers: list[str]
) -> tuple[str, str]:
    name = _unique(kind)
    response = await client.post(
        "/v1/hook-sources",
        json={"name": name, "kind": kind, "satkers": satkers, "description": "SATGAS SIPP PT"},
        headers=auth_headers(["admin"], satker="pt-bengkulu"),
    )
    assert response.status_code == 201, response.text
    secret = response.json()["secret"]
    assert secret.startswith("whsec_")
    return name, secret


async def _post(
    client: httpx.AsyncClient,
    source: str,
    secret: str,
    body: dict[str, Any],
    *,
    message_id: str | None = None,
    sent_at: datetime | None = None,
    tamper: bool = False,
) -> httpx.Response:
    raw = orjson.dumps(body).decode()
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    sent_at = sent_at or datetime.now(UTC)
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, sent_at, raw),
        "content-type": "application/json",
    }
    if tamper:
        raw = raw.replace("5.", "6.", 1)
    return await client.post(f"/v1/hooks/{source}", content=raw, headers=headers)


async def _run_worker(settings: Settings) -> None:
    await run_burst(settings)


async def _messages(
    client: httpx.AsyncClient, auth_headers: TokenFactory, source: str
) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/hook-messages",
        params={"source": source},
        headers=auth_headers(["admin"], satker="pt-bengkulu"),
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def _instance(
    client: httpx.AsyncClient, auth_headers: TokenFactory, satker: str, instance_id: str
) -> dict[str, Any]:
    response = await client.get(
        f"/v1/instances/{instance_id}", headers=auth_headers(["staf_ti"], satker=satker)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _upgrades(
    client: httpx.AsyncClient, auth_headers: TokenFactory, satker: str, version: str
) -> list[str]:
    response = await client.get(
        "/v1/instances",
        params={"sop": "upgrade-sipp", "satker": satker},
        headers=auth_headers(["staf_ti"], satker=satker),
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    return [i["id"] for i in items if i["title"] == f"Upgrade SIPP {version}"]


def _problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code


def _notice(version: str, **extra: Any) -> dict[str, Any]:
    return {"version": version, "released_at": "2026-11-20", "notes": "Perbaikan e-Berpadu"} | extra


# --- sources ------------------------------------------------------------------------------


async def test_the_secret_is_returned_once(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    name, _ = await _add_source(client, auth_headers, "sipp-upgrade", TARGETS)
    admin = auth_headers(["admin"], satker="pt-bengkulu")
    listed = await client.get("/v1/hook-sources", headers=admin)
    assert name in [s["name"] for s in listed.json()["items"]]
    assert all("secret" not in s for s in listed.json()["items"])
    one = await client.get(f"/v1/hook-sources/{name}", headers=admin)
    assert one.json()["satkers"] == TARGETS
    assert "secret" not in one.json()
    again = await client.post(
        "/v1/hook-sources",
        json={"name": name, "kind": "correlation", "satkers": TARGETS},
        headers=admin,
    )
    _problem(again, 409, "hook_source_exists")


async def test_the_secret_is_stored_encrypted(
    client: httpx.AsyncClient, auth_headers: TokenFactory, engine: AsyncEngine
) -> None:
    name, secret = await _add_source(client, auth_headers, "sipp-upgrade", TARGETS)
    async with engine.connect() as connection:
        stored = (
            await connection.execute(
                sa.text("SELECT secret FROM hook_source WHERE name = :name"), {"name": name}
            )
        ).scalar_one()
    assert stored.startswith("fernet:")
    assert secret not in stored
    assert unseal(stored) == secret
    # And it still verifies what the sender signs with it.
    response = await _post(client, name, secret, _notice("9.9.9"))
    assert response.status_code == 202, response.text


async def test_sources_are_for_admins_and_their_own_satkers(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    body = {"name": _unique("x"), "kind": "correlation", "satkers": ["pn-manna"]}
    refused = await client.post("/v1/hook-sources", json=body, headers=auth_headers(["staf_ti"]))
    _problem(refused, 403, "role_required")
    # A district court's admin cannot aim a sender at another court.
    other = await client.post(
        "/v1/hook-sources", json=body, headers=auth_headers(["admin"], satker="pn-tais")
    )
    _problem(other, 404, "satker_not_found")


# --- receiving ----------------------------------------------------------------------------


async def test_unknown_source_is_404(client: httpx.AsyncClient) -> None:
    response = await _post(client, "nobody-here", "whsec_" + "A" * 44, _notice("5.0.0"))
    _problem(response, 404, "hook_source_not_found")


async def test_tampered_body_is_401_and_nothing_is_stored(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    name, secret = await _add_source(client, auth_headers, "sipp-upgrade", TARGETS)
    response = await _post(client, name, secret, _notice("5.4.0"), tamper=True)
    _problem(response, 401, "webhook_signature_invalid")
    wrong_key = await _post(client, name, "whsec_" + "B" * 44, _notice("5.4.0"))
    _problem(wrong_key, 401, "webhook_signature_invalid")
    unsigned = await client.post(f"/v1/hooks/{name}", json=_notice("5.4.0"))
    _problem(unsigned, 401, "webhook_signature_invalid")
    assert await _messages(client, auth_headers, name) == []


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
async def test_timestamp_outside_five_minutes_is_401(
    client: httpx.AsyncClient, auth_headers: TokenFactory, offset: timedelta
) -> None:
    name, secret = await _add_source(client, auth_headers, "sipp-upgrade", TARGETS)
    sent_at = datetime.now(UTC) + offset
    response = await _post(client, name, secret, _notice("5.4.1"), sent_at=sent_at)
    _problem(response, 401, "webhook_timestamp_stale")
    assert await _messages(client, auth_headers, name) == []


async def test_a_body_that_is_not_a_json_object_is_400(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    name, secret = await _add_source(client, auth_headers, "correlation", TARGETS)
    now = datetime.now(UTC)
    raw = "[1, 2]"
    headers = {
        "webhook-id": "msg_list",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_list", now, raw),
    }
    response = await client.post(f"/v1/hooks/{name}", content=raw, headers=headers)
    _problem(response, 400, "webhook_body_invalid")


# --- sipp-upgrade -------------------------------------------------------------------------


async def test_upgrade_notice_starts_sop09_in_each_target_satker(
    client: httpx.AsyncClient, auth_headers: TokenFactory, settings: Settings
) -> None:
    name, secret = await _add_source(client, auth_headers, "sipp-upgrade", TARGETS)
    version = f"5.4.{uuid.uuid4().int % 10_000}"
    message_id = f"msg_{uuid.uuid4().hex}"
    response = await _post(client, name, secret, _notice(version), message_id=message_id)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "received"
    stored = response.json()["id"]

    await _run_worker(settings)

    [message] = await _messages(client, auth_headers, name)
    assert (message["id"], message["status"], message["message_id"]) == (
        stored,
        "processed",
        message_id,
    )
    started = message["result"]["started"]
    assert sorted(started) == TARGETS
    for satker in TARGETS:
        instance = await _instance(client, auth_headers, satker, started[satker])
        assert instance["sop"] == "upgrade-sipp"
        assert instance["satker"] == satker
        assert instance["current_steps"] == ["backup_database_aplikasi"]
        assert instance["context"]["sipp_version"] == version
        first = next(t for t in instance["tasks"] if t["step_id"] == "notifikasi_upgrade")
        assert first["status"] == "completed"
        assert first["completed_by"] == f"hook:{name}"
        assert first["evidence"] == [f"inbound:{stored}"]
        assert version in first["note"]
        assert "e-Berpadu" in first["note"]
        # Step 2 is staf TI's, in their inbox.
        inbox = await client.get("/v1/tasks", headers=auth_headers(["staf_ti"], satker=satker))
        assert instance["id"] in [t["instance_id"] for t in inbox.json()["items"]]

    # The sender retries the same webhook-id: acknowledged, and nothing more happens.
    replay = await _post(client, name, secret, _notice(version), message_id=message_id)
    assert replay.status_code == 200, replay.text
    assert replay.json() == {"id": stored, "status": "duplicate"}
    await _run_worker(settings)
    assert len(await _messages(client, auth_headers, name)) == 1

    # The same version announced again under a new webhook-id: stored, but no new instance.
    again = await _post(client, name, secret, _notice(version))
    assert again.status_code == 202, again.text
    await _run_worker(settings)
    latest = (await _messages(client, auth_headers, name))[0]
    assert latest["id"] == again.json()["id"]
    assert latest["status"] == "ignored"
    assert latest["result"]["existing"] == started
    for satker in TARGETS:
        assert await _upgrades(client, auth_headers, satker, version) == [started[satker]]


async def test_upgrade_notice_for_some_satkers_only(
    client: httpx.AsyncClient, auth_headers: TokenFactory, settings: Settings
) -> None:
    name, secret = await _add_source(client, auth_headers, "sipp-upgrade", TARGETS)
    version = f"5.5.{uuid.uuid4().int % 10_000}"
    assert (await _post(client, name, secret, _notice(version, satkers=["pn-manna"]))).is_success
    outside = await _post(client, name, secret, _notice(version + "b", satkers=["pn-tais"]))
    assert outside.status_code == 202
    invalid = await _post(client, name, secret, {"released_at": "2026-11-20"})
    assert invalid.status_code == 202
    await _run_worker(settings)

    by_id = {m["id"]: m for m in await _messages(client, auth_headers, name)}
    assert await _upgrades(client, auth_headers, "pn-bengkulu", version) == []
    assert len(await _upgrades(client, auth_headers, "pn-manna", version)) == 1
    assert by_id[outside.json()["id"]]["status"] == "failed"
    assert "pn-tais" in by_id[outside.json()["id"]]["error"]
    assert by_id[invalid.json()["id"]]["status"] == "failed"
    assert "version" in by_id[invalid.json()["id"]]["error"]
    failed = await client.get(
        "/v1/hook-messages",
        params={"source": name, "status": "failed"},
        headers=auth_headers(["admin"], satker="pt-bengkulu"),
    )
    assert len(failed.json()["items"]) == 2


async def test_two_notices_of_one_version_processed_at_once_start_it_once(
    client: httpx.AsyncClient, auth_headers: TokenFactory, settings: Settings, engine: AsyncEngine
) -> None:
    name, secret = await _add_source(client, auth_headers, "sipp-upgrade", TARGETS)
    version = f"5.6.{uuid.uuid4().int % 10_000}"
    posted = [await _post(client, name, secret, _notice(version)) for _ in range(2)]
    catalog = load_catalog(settings.catalog.path)
    services = Services(roles={role.id: role for role in catalog.roles})
    sessions = session_factory(engine)

    async def process(message_id: str) -> processing.Handled | None:
        # As the job does: a transaction that lost a race is simply tried again.
        for _ in range(5):
            try:
                async with unit_of_work(sessions) as session:
                    return await processing.process_message(
                        session, services, message_id, datetime.now(UTC)
                    )
            except DBAPIError:
                await asyncio.sleep(0.1)
        raise AssertionError("never processed")

    handled = await asyncio.gather(*(process(r.json()["id"]) for r in posted))
    assert sorted(h.status.value for h in handled if h is not None) == ["ignored", "processed"]
    for satker in TARGETS:
        assert len(await _upgrades(client, auth_headers, satker, version)) == 1


# --- correlation --------------------------------------------------------------------------


async def _rkakl_at_the_high_court(client: httpx.AsyncClient, auth_headers: TokenFactory) -> str:
    court = auth_headers(["bagian_ptip", "sekretaris"], satker="pn-tais")
    started = await client.post(
        "/v1/instances", json={"sop": "rkakl", "title": "RKAKL 2027"}, headers=court
    )
    assert started.status_code == 201, started.text
    instance_id = str(started.json()["id"])
    for step in ("susun_usulan", "tanda_tangan_usulan", "kirim_ke_pt"):
        moved = await client.post(
            f"/v1/instances/{instance_id}/transitions", json={"step": step}, headers=court
        )
        assert moved.status_code == 200, moved.text
    return instance_id


async def test_correlation_completes_the_high_courts_step(
    client: httpx.AsyncClient, auth_headers: TokenFactory, settings: Settings, engine: AsyncEngine
) -> None:
    instance_id = await _rkakl_at_the_high_court(client, auth_headers)
    name, secret = await _add_source(client, auth_headers, "correlation", ["pn-tais"])
    body = {
        "correlation_key": instance_id,
        "step": "kirim_ke_ma",
        "note": "Usulan diteruskan ke MA; pagu sementara menyusul",
        "evidence": ["W7-A/123/KU.01/XI/2026"],
    }
    response = await _post(client, name, secret, body)
    assert response.status_code == 202, response.text
    await _run_worker(settings)

    [message] = await _messages(client, auth_headers, name)
    assert message["status"] == "processed", message
    assert message["result"]["current_steps"] == ["terima_pagu_sementara"]
    instance = await _instance(client, auth_headers, "pn-tais", instance_id)
    assert instance["current_steps"] == ["terima_pagu_sementara"]
    step = next(t for t in instance["tasks"] if t["step_id"] == "kirim_ke_ma")
    assert step["completed_by"] == f"hook:{name}"
    assert step["evidence"] == [f"inbound:{message['id']}", "W7-A/123/KU.01/XI/2026"]

    # A second run of the job (the resend cron, a redelivery) finds nothing left to do.
    catalog = load_catalog(settings.catalog.path)
    services = Services(roles={role.id: role for role in catalog.roles})
    async with unit_of_work(session_factory(engine)) as session:
        assert (
            await processing.process_message(session, services, message["id"], datetime.now(UTC))
            is None
        )
    assert (await _instance(client, auth_headers, "pn-tais", instance_id))["version"] == instance[
        "version"
    ]


async def test_correlation_without_a_matching_open_step_fails_with_a_reason(
    client: httpx.AsyncClient, auth_headers: TokenFactory, settings: Settings
) -> None:
    instance_id = await _rkakl_at_the_high_court(client, auth_headers)
    # This source may act in pn-manna only, not in the instance's pn-tais.
    elsewhere, elsewhere_secret = await _add_source(
        client, auth_headers, "correlation", ["pn-manna"]
    )
    name, secret = await _add_source(client, auth_headers, "correlation", ["pn-tais"])
    wrong_step = await _post(
        client, name, secret, {"correlation_key": instance_id, "step": "telaah_dja"}
    )
    not_ours = await _post(
        client,
        elsewhere,
        elsewhere_secret,
        {"correlation_key": instance_id, "step": "kirim_ke_ma"},
    )
    unknown = await _post(client, name, secret, {"correlation_key": "nope", "step": "kirim_ke_ma"})
    await _run_worker(settings)

    by_id = {m["id"]: m for m in await _messages(client, auth_headers, name)}
    failed = by_id[wrong_step.json()["id"]]
    assert failed["status"] == "failed"
    assert "no open external step 'telaah_dja'" in failed["error"]
    assert "kirim_ke_ma" in failed["error"]
    assert by_id[unknown.json()["id"]]["status"] == "failed"
    [foreign] = await _messages(client, auth_headers, elsewhere)
    assert foreign["id"] == not_ours.json()["id"]
    assert foreign["status"] == "failed"
    assert f"no instance {instance_id!r}" in foreign["error"]
    instance = await _instance(client, auth_headers, "pn-tais", instance_id)
    assert instance["current_steps"] == ["kirim_ke_ma"]


# --- deletion, recovery, the command line -------------------------------------------------


async def test_a_deleted_source_is_refused_and_its_log_stays(
    client: httpx.AsyncClient, auth_headers: TokenFactory, engine: AsyncEngine
) -> None:
    name, secret = await _add_source(client, auth_headers, "correlation", ["pn-tais"])
    kept = await _post(client, name, secret, {"correlation_key": "x", "step": "kirim_ke_ma"})
    assert kept.status_code == 202
    # Until a worker takes it, the message is what the resend cron would queue again.
    async with unit_of_work(session_factory(engine)) as session:
        waiting = await hooks.waiting_message_ids(
            session, received_before=datetime.now(UTC) + timedelta(minutes=2)
        )
    assert kept.json()["id"] in waiting

    admin = auth_headers(["admin"], satker="pt-bengkulu")
    assert (await client.delete(f"/v1/hook-sources/{name}", headers=admin)).status_code == 204
    refused = await _post(client, name, secret, {"correlation_key": "x", "step": "kirim_ke_ma"})
    _problem(refused, 404, "hook_source_not_found")
    assert [m["id"] for m in await _messages(client, auth_headers, name)] == [kept.json()["id"]]
    reused = await client.post(
        "/v1/hook-sources",
        json={"name": name, "kind": "correlation", "satkers": ["pn-tais"]},
        headers=admin,
    )
    _problem(reused, 409, "hook_source_exists")


def test_cli_adds_a_source_and_prints_its_secret(
    settings_env: dict[str, str], migrated: Settings
) -> None:
    name = _unique("cli")
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "hook-source", "add", name,
         "--kind", "sipp-upgrade", "--satkers", "pn-tais,pn-manna"],
        env={**os.environ, **settings_env}, cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip()
    assert secret.startswith("whsec_")
    assert f"/v1/hooks/{name}" in result.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "hook-source", "list"],
        env={**os.environ, **settings_env}, cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert name in listed.stdout
    assert secret not in listed.stdout
