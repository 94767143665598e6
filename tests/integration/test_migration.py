"""Moving running instances to a new version of their SOP: a dry run first, refusals
that name every problem, then the move, which the audit chain records and after which
the instance runs on the new version."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.core.catalog.loader import load_catalog
from services.core.catalog.service import sync_catalog
from services.core.db import create_engine, session_factory, unit_of_work
from services.core.engine.definition import Catalog
from services.core.settings import PROJECT_ROOT, Settings
from tests.support import TokenFactory, serving

WIFI = "wifi-internet"


def _version_2(catalog: Catalog) -> Catalog:
    """wifi-internet v2: step 1 renamed, step 3 replaced by `uji_koneksi`."""
    sop = catalog.sop(WIFI)
    first, second, third = sop.steps
    steps = (
        first.model_copy(update={"id": "ajukan_permohonan", "next": second.id}),
        second.model_copy(update={"next": "uji_koneksi"}),
        third.model_copy(update={"id": "uji_koneksi", "activity": "Menguji koneksi WiFi"}),
    )
    newer = sop.model_copy(
        update={"version": 2, "steps": steps, "entry_points": ("ajukan_permohonan",)}
    )
    return catalog.model_copy(
        update={"sops": tuple(newer if s.code == WIFI else s for s in catalog.sops)}
    )


@pytest.fixture
async def court(migrated: Settings, own_database: str) -> AsyncIterator[httpx.AsyncClient]:
    """An app on a database of its own (a second version there changes no other test)."""
    settings = migrated.model_copy(
        update={"database": migrated.database.model_copy(update={"url": own_database})}
    )
    async with serving(settings) as (_, client):
        yield client


async def _at_step_2(client: httpx.AsyncClient, user: dict[str, str], staff: dict[str, str]) -> str:
    started = await client.post("/v1/instances", json={"sop": WIFI, "title": "Akun"}, headers=user)
    assert started.status_code == 201, started.text
    instance_id = str(started.json()["id"])
    done = await client.post(
        f"/v1/instances/{instance_id}/transitions",
        json={"step": "ajukan_permohonan_password"},
        headers=user,
    )
    assert done.status_code == 200, done.text
    return instance_id


async def _publish_version_2(settings: Settings, url: str) -> None:
    """Load the catalog (version 1, as an app's start-up does), then version 2."""
    engine = create_engine(settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": url})}))  # fmt: skip
    catalog = load_catalog(settings.catalog.path)
    try:
        for published in (catalog, _version_2(catalog)):
            async with unit_of_work(session_factory(engine)) as session:
                await sync_catalog(session, published, datetime.now(UTC))
    finally:
        await engine.dispose()


async def test_a_dry_run_a_refusal_then_the_move(
    court: httpx.AsyncClient, migrated: Settings, own_database: str, auth_headers: TokenFactory
) -> None:
    user, staff = auth_headers(["pengguna"]), auth_headers(["staf_ti"])
    admin = auth_headers(["admin"])
    instance_id = await _at_step_2(court, user, staff)
    await _publish_version_2(migrated, own_database)
    url = f"/v1/instances/{instance_id}/migrate"

    plain = await court.post(url, json={"version": 2, "dry_run": True}, headers=admin)
    assert plain.status_code == 200, plain.text
    body = plain.json()
    assert (body["allowed"], body["instance"]) == (False, None)
    verdicts = {move["from_step"]: move["verdict"] for move in body["moves"]}
    assert verdicts == {"ajukan_permohonan_password": "no_step", "buat_user_password": "same"}
    assert "map it in step_map" in body["problems"][0]

    across = await court.post(
        url,
        json={"version": 2, "dry_run": True, "step_map": {
            "ajukan_permohonan_password": "ajukan_permohonan",
            "buat_user_password": "ajukan_permohonan"}},
        headers=admin,
    )  # fmt: skip
    assert across.json()["allowed"] is False
    assert any("accept_lane_changes" in p for p in across.json()["problems"])

    step_map = {"ajukan_permohonan_password": "ajukan_permohonan"}
    refused = await court.post(url, json={"version": 2}, headers=admin)
    assert (refused.status_code, refused.json()["code"]) == (422, "migration_refused")
    assert refused.json()["problems"]
    unchanged = (await court.get(f"/v1/instances/{instance_id}", headers=admin)).json()
    assert unchanged["sop_version"] == 1

    for headers, status, code in ((staff, 403, "migration_forbidden"),):
        denied = await court.post(url, json={"version": 2, "step_map": step_map}, headers=headers)
        assert (denied.status_code, denied.json()["code"]) == (status, code)

    moved = await court.post(url, json={"version": 2, "step_map": step_map}, headers=admin)
    assert moved.status_code == 200, moved.text
    instance = moved.json()["instance"]
    assert instance["sop_version"] == 2
    assert {t["step_id"] for t in instance["tasks"]} == {"ajukan_permohonan", "buat_user_password"}

    events = (await court.get(f"/v1/instances/{instance_id}/events", headers=admin)).json()
    [event] = [e for e in events["items"] if e["type"] == "instance.migrated"]
    assert event["data"]["from_version"] == 1
    assert event["data"]["to_version"] == 2
    assert event["data"]["moves"] == [
        {"task_id": instance["tasks"][0]["id"], "from_step": "ajukan_permohonan_password",
         "to_step": "ajukan_permohonan"}
    ]  # fmt: skip
    audit = (await court.get(f"/v1/instances/{instance_id}/audit", headers=admin)).json()
    assert audit["valid"] is True

    # The instance runs on version 2: step 2 leads to the new step 3.
    done = await court.post(
        f"/v1/instances/{instance_id}/transitions",
        json={"step": "buat_user_password"},
        headers=staff,
    )
    assert done.status_code == 200, done.text
    assert done.json()["current_steps"] == ["uji_koneksi"]

    again = await court.post(url, json={"version": 2, "dry_run": True}, headers=admin)
    assert (again.status_code, again.json()["code"]) == (409, "already_at_version")
    missing = await court.post(url, json={"version": 9, "dry_run": True}, headers=admin)
    assert (missing.status_code, missing.json()["code"]) == (404, "sop_version_not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"version": 0},
        {"version": 2, "step_map": {"a" * 65: "b"}},
        {"version": 2, "unknown": True},
        {"version": "dua"},
    ],
)
async def test_a_bad_migration_request_is_422(
    client: httpx.AsyncClient, auth_headers: TokenFactory, body: dict[str, Any]
) -> None:
    response = await client.post(
        "/v1/instances/x/migrate", json=body, headers=auth_headers(["admin"])
    )
    assert response.status_code == 422, response.text


def _diff(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", "catalog", "diff", WIFI, *args],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def test_catalog_diff_shows_what_changed_step_by_step(
    migrated: Settings, own_database: str, settings_env: dict[str, str]
) -> None:
    await _publish_version_2(migrated, own_database)
    env = {**os.environ, **settings_env, "ALUR_DATABASE__URL": own_database}
    result = await asyncio.to_thread(_diff, env, "--from", "1", "--to", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    assert "SOP wifi-internet: version 1 -> 2" in text
    assert "+ step 1 ajukan_permohonan:" in text
    assert "- step 1 ajukan_permohonan_password:" in text
    assert "~ step 2 buat_user_password" in text
    assert "next: 'tes_koneksi' -> 'uji_koneksi'" in text
    as_json = await asyncio.to_thread(_diff, env, "--from", "1", "--to", "2", "--json")
    found = json.loads(as_json.stdout)
    assert {(s["step_id"], s["status"]) for s in found["steps"]} == {
        ("ajukan_permohonan", "added"), ("uji_koneksi", "added"),
        ("buat_user_password", "changed"), ("ajukan_permohonan_password", "removed"),
        ("tes_koneksi", "removed"),
    }  # fmt: skip
    missing = await asyncio.to_thread(_diff, env, "--from", "1", "--to", "7")
    assert missing.returncode == 2
    assert "has no version 7" in missing.stderr


async def test_every_running_instance_of_a_version_in_one_call(
    court: httpx.AsyncClient, migrated: Settings, own_database: str, auth_headers: TokenFactory
) -> None:
    # A satker of its own: the database copied from the suite's holds others' instances.
    satker = "pn-migrasi"
    created = await court.post(
        "/v1/satkers", json={"id": satker, "name": "PN Migrasi", "parent": "pt-bengkulu"},
        headers=auth_headers(["admin"], satker="pt-bengkulu"),
    )  # fmt: skip
    assert created.status_code == 201, created.text
    user, staff = (
        auth_headers(["pengguna"], satker=satker),
        auth_headers(["staf_ti"], satker=satker),
    )
    admin = auth_headers(["admin"], satker=satker)
    ids = [await _at_step_2(court, user, staff) for _ in range(3)]
    await _publish_version_2(migrated, own_database)
    body: dict[str, Any] = {"sop": WIFI, "from_version": 1, "version": 2}

    dry = await court.post("/v1/instances/migrate", json={**body, "dry_run": True}, headers=admin)
    assert dry.status_code == 200, dry.text
    assert (dry.json()["total"], dry.json()["migrated"], dry.json()["refused"]) == (3, 0, 3)

    body["step_map"] = {"ajukan_permohonan_password": "ajukan_permohonan"}
    first = await court.post("/v1/instances/migrate", json={**body, "limit": 2}, headers=admin)
    assert (first.json()["total"], first.json()["migrated"]) == (3, 2)
    assert [item["instance_id"] for item in first.json()["items"]] == ids[:2]
    rest = await court.post("/v1/instances/migrate", json=body, headers=admin)
    assert (rest.json()["total"], rest.json()["migrated"]) == (1, 1)
    done = await court.post("/v1/instances/migrate", json=body, headers=admin)
    assert done.json()["total"] == 0
    for instance_id in ids:
        read = await court.get(f"/v1/instances/{instance_id}", headers=admin)
        assert read.json()["sop_version"] == 2

    clerk = await court.post("/v1/instances/migrate", json=body, headers=staff)
    assert (clerk.status_code, clerk.json()["code"]) == (403, "migration_forbidden")
