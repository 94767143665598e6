"""Bad input gets a 4xx problem naming what is wrong, never a 500, and nothing is stored.

Everything here runs on both backends: PostgreSQL refuses values SQLite stores (U+0000,
integers beyond a column), so a gap shows on one of them only. The requests act in a
satker of their own, so counting its rows shows that nothing was stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from jose import jwt
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.settings import Settings
from tests.support import TEST_JWT_SECRET, TokenFactory, serving

PROBLEM = "application/problem+json"
SATKER = "uji-masukan"
CONTENT = "konten-website"  # author -> admin decision (loop) -> kasubbag -> admin
MIB = 1024 * 1024
# Monitors made here are inactive and point nowhere: a later test's worker checks every
# active monitor.
LOOPBACK = "http://127.0.0.1:9/"


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = dict(response.json())
    assert body["code"] == code, body
    return body


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as connection:
        found = await connection.scalar(
            sa.text(f"SELECT count(*) FROM {table} WHERE satker_id = :satker"),
            {"satker": SATKER},
        )
    return int(found or 0)


@pytest.fixture(scope="module")
async def satker(app: FastAPI, auth_headers: TokenFactory) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://alur.test") as http:
        response = await http.post(
            "/v1/satkers",
            json={"id": SATKER, "name": "Uji masukan"},
            headers=auth_headers(["admin"]),
        )
    assert response.status_code == 201, response.text
    return SATKER


@pytest.fixture
def headers(satker: str, auth_headers: TokenFactory) -> dict[str, str]:
    roles = ["admin", "admin_website", "pembuat_artikel", "kasubbag_ptip", "staf_ti"]
    return auth_headers(roles, satker=satker)


async def _start(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post(
        "/v1/instances", json={"sop": CONTENT, "title": "x", **body}, headers=headers
    )


# --- request bodies: a size limit, counted while reading --------------------------------


async def test_a_body_over_1_mib_is_413_and_nothing_is_stored(
    client: httpx.AsyncClient, headers: dict[str, str], engine: AsyncEngine
) -> None:
    before = await _count(engine, "instance")
    response = await _start(client, headers, context={"lampiran": "x" * (2 * MIB)})
    body = _problem(response, 413, "content_too_large")
    assert str(MIB) in body["detail"]
    assert await _count(engine, "instance") == before


async def test_a_chunked_body_is_cut_at_the_limit(
    client: httpx.AsyncClient, headers: dict[str, str], engine: AsyncEngine
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit can only be found while reading.
        nonlocal sent
        yield b'{"sop": "konten-website", "title": "x", "context": {"a": "'
        for _ in range(64):
            sent += 64 * 1024
            yield b"y" * (64 * 1024)
        yield b'"}}'

    before = await _count(engine, "instance")
    response = await client.post(
        "/v1/instances",
        content=chunks(),
        headers={**headers, "content-type": "application/json"},
    )
    _problem(response, 413, "content_too_large")
    assert await _count(engine, "instance") == before


async def test_a_route_that_reads_no_body_refuses_a_declared_large_one_before_it_runs(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    created = await client.post(
        "/v1/renewals",
        json={"service": "domain", "name": "pn.go.id", "due_date": "2030-01-31"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    path = f"/v1/renewals/{created.json()['id']}"
    refused = await client.request("DELETE", path, content=b"x" * (2 * MIB), headers=headers)
    _problem(refused, 413, "content_too_large")
    listed = (await client.get("/v1/renewals", headers=headers)).json()["items"]
    assert created.json()["id"] in [item["id"] for item in listed]


async def test_the_hook_route_keeps_its_own_smaller_limit(
    client: httpx.AsyncClient, headers: dict[str, str], satker: str
) -> None:
    created = await client.post(
        "/v1/hook-sources",
        json={"name": "uji-batas", "kind": "correlation", "satkers": [satker]},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    response = await client.post(
        "/v1/hooks/uji-batas", content=b"{" + b" " * (300 * 1024) + b"}", headers=headers
    )
    body = _problem(response, 413, "webhook_body_too_large")
    assert str(256 * 1024) in body["detail"]


async def test_the_limit_is_a_setting(
    migrated: Settings, auth_headers: TokenFactory, satker: str
) -> None:
    small = migrated.model_copy(
        update={"api": migrated.api.model_copy(update={"max_body_bytes": 4096})}
    )
    headers = auth_headers(["pembuat_artikel"], satker=satker)
    async with serving(small) as (_, http):
        fits = await _start(http, headers, context={"catatan": "x" * 1000})
        assert fits.status_code == 201, fits.text
        _problem(
            await _start(http, headers, context={"catatan": "x" * 5000}), 413, "content_too_large"
        )


# --- integers beyond their column --------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/sops/konten-website?version=2147483648",
        "/v1/sops/konten-website/diagram?version=9223372036854775808",
        "/v1/webhook-deliveries?before=9223372036854775808",
        "/v1/webhook-deliveries/9223372036854775808",
        "/v1/instances?started_from=0001-01-01T00:00:00%2B07:00",
    ],
)
async def test_numbers_and_times_out_of_range_in_paths_and_queries_are_422(
    client: httpx.AsyncClient, headers: dict[str, str], path: str
) -> None:
    _problem(await client.get(path, headers=headers), 422, "validation_error")


async def test_a_huge_sop_number_is_not_found(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for code in ("99999999999999999999", "²"):
        _problem(await client.get(f"/v1/sops/{code}", headers=headers), 404, "sop_not_found")


async def test_freshness_days_beyond_the_column_is_422(
    client: httpx.AsyncClient, headers: dict[str, str], engine: AsyncEngine
) -> None:
    body = {"name": "PN", "url": LOOPBACK, "active": False, "freshness_days": 2**31}
    response = await client.post("/v1/monitors", json=body, headers=headers)
    problem = _problem(response, 422, "validation_error")
    assert problem["errors"][0]["location"] == "body.freshness_days"
    assert await _count(engine, "monitor") == 0


def _nested(depth: int) -> Any:
    value: Any = "dalam"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "context",
    [
        {"nomor": 2**64},
        {"nomor": -(2**63) - 1},
        {"daftar": [[{"x": 1}]] * 2, "dalam": {"a": {"b": {"c": [2**70]}}}},
        {"teks": "a\x00b"},
        {"kunci\x00": 1},
        {"dalam": _nested(40)},
    ],
    ids=["above-64-bit", "below-64-bit", "nested-big", "nul-value", "nul-key", "too-deep"],
)
async def test_context_values_the_database_cannot_store_are_422(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    engine: AsyncEngine,
    context: dict[str, Any],
) -> None:
    before = await _count(engine, "instance")
    _problem(await _start(client, headers, context=context), 422, "validation_error")
    assert await _count(engine, "instance") == before


async def test_nan_and_infinity_in_context_are_422(
    client: httpx.AsyncClient, headers: dict[str, str], engine: AsyncEngine
) -> None:
    # Not JSON, but Python's parser reads them.
    before = await _count(engine, "instance")
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e400"):
        response = await client.post(
            "/v1/instances",
            content=b'{"sop": "konten-website", "title": "x", "context": {"n": ' + literal + b"}}",
            headers={**headers, "content-type": "application/json"},
        )
        _problem(response, 422, "validation_error")
    assert await _count(engine, "instance") == before


@pytest.mark.parametrize(
    "context", [b'{"\\ud800": 1}', b'{"a": ["\\udfff"]}'], ids=["key", "value"]
)
async def test_an_unpaired_surrogate_in_context_is_422(
    client: httpx.AsyncClient, headers: dict[str, str], engine: AsyncEngine, context: bytes
) -> None:
    # Valid JSON escapes that make no UTF-8: neither database (nor orjson) stores them.
    before = await _count(engine, "instance")
    response = await client.post(
        "/v1/instances",
        content=b'{"sop": "konten-website", "title": "x", "context": ' + context + b"}",
        headers={**headers, "content-type": "application/json"},
    )
    _problem(response, 422, "validation_error")
    assert await _count(engine, "instance") == before


async def test_a_64_bit_number_in_context_is_stored_and_read_back(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    context = {"besar": 2**63 - 1, "kecil": -(2**63), "pecahan": 0.1}
    started = await _start(client, headers, context=context)
    assert started.status_code == 201, started.text
    read = await client.get(f"/v1/instances/{started.json()['id']}", headers=headers)
    assert read.json()["context"] == context


# --- null, time zones, windows, special hours, U+0000 ------------------------------------


async def _monitor(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    body = {"name": "PN", "url": LOOPBACK, "keyword": "Tais", "active": False}
    response = await client.post("/v1/monitors", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_patch_with_null_for_a_required_field_is_422_and_changes_nothing(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    monitor = await _monitor(client, headers)
    path = f"/v1/monitors/{monitor['id']}"
    for field in ("name", "url", "interval_seconds", "keyword_mode", "active"):
        response = await client.patch(path, json={field: None, "retries": 5}, headers=headers)
        problem = _problem(response, 422, "validation_error")
        assert problem["errors"][0]["location"] == f"body.{field}"
    assert (await client.get(path, headers=headers)).json() == monitor
    # An optional field is cleared by null.
    cleared = await client.patch(path, json={"keyword": None}, headers=headers)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["keyword"] is None


async def test_an_unknown_time_zone_in_a_satker_is_422(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    admin = auth_headers(["admin"], satker="pt-bengkulu")
    for zone in ("Asia/Atlantis", "", "../../etc/passwd", "0"):
        body = {
            "id": "pn-atlantis",
            "name": "PN Atlantis",
            "parent": "pt-bengkulu",
            "timezone": zone,
        }
        response = await client.post("/v1/satkers", json=body, headers=admin)
        _problem(response, 422, "validation_error")
    listed = (await client.get("/v1/satkers", headers=admin)).json()["items"]
    assert "pn-atlantis" not in [s["id"] for s in listed]


@pytest.mark.parametrize(
    ("window", "why"),
    [
        ({"kind": "weekly", "weekday": 5, "start_time": "22:00", "end_time": "02:00",
          "timezone": "Asia/Atlantis"}, "time zone"),
        ({"kind": "weekly", "weekday": 5, "start_time": "22:00", "end_time": "22:00"}, "same time"),
        ({"kind": "weekly", "weekday": 5, "start_time": "22:00+07:00", "end_time": "23:00"},
         "local times"),
        ({"kind": "one_off", "starts_at": "2026-12-01T01:00:00", "ends_at": "2026-12-01T02:00:00"},
         "timezone"),
        ({"kind": "one_off", "starts_at": "0001-01-01T00:00:00+07:00",
          "ends_at": "2026-12-01T02:00:00Z"}, "UTC"),
    ],
    ids=["unknown-zone", "start-equals-end", "offset-in-local-time", "naive", "before-utc-range"],
)  # fmt: skip
async def test_invalid_maintenance_windows_are_422_and_not_stored(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    engine: AsyncEngine,
    window: dict[str, Any],
    why: str,
) -> None:
    monitor = await _monitor(client, headers)
    path = f"/v1/monitors/{monitor['id']}/maintenance-windows"
    problem = _problem(
        await client.post(path, json=window, headers=headers), 422, "validation_error"
    )
    assert why in problem["detail"]
    assert (await client.get(path, headers=headers)).json()["items"] == []


@pytest.mark.parametrize(
    "hours",
    [
        {"monday": [8]},
        {"monday": "08:00-12:00"},
        {"monday": ["8-12"]},
        {"monday": [{"from": "08:00"}]},
        {"funday": ["08:00-12:00"]},
        {"monday": ["25:00-26:00"]},
        {"monday": ["12:00-08:00"]},
    ],
)
async def test_special_hours_that_are_not_spans_are_422(
    client: httpx.AsyncClient, headers: dict[str, str], satker: str, hours: dict[str, Any]
) -> None:
    path = f"/v1/satkers/{satker}/calendar-overrides"
    body = {
        "kind": "special_hours",
        "start_date": "2027-02-18",
        "end_date": "2027-03-19",
        "hours": hours,
        "reason": "Ramadan",
    }
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] in ("validation_error", "invalid_calendar_override")
    assert (await client.get(path, headers=headers)).json()["items"] == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/instances", {"sop": CONTENT, "title": "Berita\x00"}),
        ("POST", "/v1/instances", {"sop": CONTENT, "title": "x", "context": {"a\x00": "b"}}),
        ("POST", "/v1/instances", {"sop": "konten\x00website", "title": "x"}),
        ("GET", "/v1/instances/%00", None),
        ("GET", "/v1/instances?sop=konten%00website", None),
        ("GET", "/v1/sops/konten%00website", None),
        ("GET", "/v1/tasks?lane=staf%00ti", None),
        ("POST", "/v1/tasks/%00/claim", None),
        ("POST", "/v1/monitors", {"name": "PN\x00", "url": LOOPBACK, "active": False}),
        ("POST", "/v1/renewals", {"service": "domain", "name": "a\x00", "due_date": "2027-01-01"}),
    ],
)
async def test_u0000_anywhere_is_422(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    engine: AsyncEngine,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    before = [await _count(engine, t) for t in ("instance", "monitor", "renewal")]
    response = await client.request(method, path, json=body, headers=headers)
    _problem(response, 422, "validation_error")
    assert [await _count(engine, t) for t in ("instance", "monitor", "renewal")] == before


async def test_u0000_in_a_header_is_422(
    client: httpx.AsyncClient, headers: dict[str, str], engine: AsyncEngine
) -> None:
    before = await _count(engine, "instance")
    response = await client.post(
        "/v1/instances",
        json={"sop": CONTENT, "title": "x"},
        headers={**headers, "Idempotency-Key": "kunci\x00"},
    )
    _problem(response, 422, "validation_error")
    assert await _count(engine, "instance") == before


async def test_a_forged_cursor_is_422_not_500(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    import base64

    import orjson

    for started, instance_id in (
        ("2026-01-01T00:00:00", "x"),  # naive
        ("0001-01-01T00:00:00+07:00", "x"),  # before UTC's range
        ("2026-01-01T00:00:00+00:00", "a\x00b"),
        ("2026-01-01T00:00:00+00:00", 7),
    ):
        raw = base64.urlsafe_b64encode(orjson.dumps([started, instance_id])).decode()
        response = await client.get("/v1/instances", params={"cursor": raw}, headers=headers)
        _problem(response, 422, "invalid_cursor")


# --- tokens --------------------------------------------------------------------------------


async def test_a_token_whose_exp_overflows_a_float_is_401(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    now = int(datetime.now(UTC).timestamp())
    for exp in (10**400, 10**309, -(10**400)):
        claims = {
            "iss": settings.auth.issuer,
            "aud": settings.auth.audience,
            "sub": "budi",
            "roles": ["staf_ti"],
            "satker": "pn-tais",
            "iat": now,
            "exp": exp,
        }
        token = jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256")
        response = await client.get("/v1/tasks", headers={"Authorization": f"Bearer {token}"})
        _problem(response, 401, "invalid_token")


# --- unknown fields ---------------------------------------------------------------------


async def test_unknown_fields_in_command_bodies_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str], engine: AsyncEngine
) -> None:
    before = await _count(engine, "instance")
    smuggled = await _start(client, headers, id="00000000-0000-0000-0000-000000000000")
    assert _problem(smuggled, 422, "validation_error")["errors"][0]["location"] == "body.id"
    assert await _count(engine, "instance") == before

    started = await _start(client, headers)
    instance_id = started.json()["id"]
    response = await client.post(
        f"/v1/instances/{instance_id}/transitions",
        json={"step": "siapkan_sumber_data", "status": "completed"},
        headers=headers,
    )
    _problem(response, 422, "validation_error")
    read = await client.get(f"/v1/instances/{instance_id}", headers=headers)
    assert read.json()["version"] == 1
    assert read.json()["current_steps"] == ["siapkan_sumber_data"]


# --- started_at ----------------------------------------------------------------------------


async def test_started_at_is_bounded_and_the_error_says_which_bound(
    client: httpx.AsyncClient, headers: dict[str, str], engine: AsyncEngine
) -> None:
    before = await _count(engine, "instance")
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    problem = _problem(await _start(client, headers, started_at=future), 422, "invalid_started_at")
    assert "future" in problem["detail"]
    for ancient in ("0001-01-01T00:00:00Z", "1999-12-31T23:59:59+00:00"):
        problem = _problem(
            await _start(client, headers, started_at=ancient), 422, "invalid_started_at"
        )
        assert "2000-01-01" in problem["detail"]
    # Before the first instant UTC can hold: refused as a value.
    _problem(
        await _start(client, headers, started_at="0001-01-01T00:00:00+07:00"),
        422,
        "validation_error",
    )
    assert await _count(engine, "instance") == before
    # A procedure begun on paper within the bounds starts.
    recent = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    assert (await _start(client, headers, started_at=recent)).status_code == 201


# --- a step whose task is no longer open ------------------------------------------------


async def test_completing_a_step_completed_meanwhile_is_409_not_404(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    started = await _start(client, headers)
    path = f"/v1/instances/{started.json()['id']}/transitions"
    first = await client.post(path, json={"step": "siapkan_sumber_data"}, headers=headers)
    assert first.status_code == 200, first.text
    late = await client.post(path, json={"step": "siapkan_sumber_data"}, headers=headers)
    problem = _problem(late, 409, "step_not_open")
    (task,) = [t for t in first.json()["tasks"] if t["step_id"] == "siapkan_sumber_data"]
    assert (problem["task_id"], problem["task_status"]) == (task["id"], "completed")
    # A step of the SOP not reached yet is no open task either; only a step outside the
    # SOP is not found.
    _problem(
        await client.post(path, json={"step": "arsip_konten"}, headers=headers),
        409,
        "step_not_open",
    )
    _problem(
        await client.post(path, json={"step": "tidak_ada"}, headers=headers), 404, "step_not_found"
    )


async def test_racing_completions_of_one_step_lose_with_409(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    started = await _start(client, headers)
    path = f"/v1/instances/{started.json()['id']}/transitions"
    responses = await asyncio.gather(
        *(
            client.post(path, json={"step": "siapkan_sumber_data"}, headers=headers)
            for _ in range(8)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert set(statuses) == {200, 409}, statuses
    codes = {r.json()["code"] for r in responses if r.status_code == 409}
    assert codes <= {"step_not_open", "concurrent_modification"}, codes
