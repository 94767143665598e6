"""Instances over HTTP: authorisation, tenancy, idempotency, concurrency, audit trail."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import TokenFactory

pytestmark = pytest.mark.both_paths

PROBLEM = "application/problem+json"
CONTENT = "konten-website"  # SOP 06: author -> admin decision (loop) -> kasubbag -> admin


async def _start(
    client: httpx.AsyncClient, headers: dict[str, str], sop: str = CONTENT, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/instances", json={"sop": sop, "title": f"Uji {sop}", **extra}, headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _transition(
    client: httpx.AsyncClient, instance_id: str, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.post(f"/v1/instances/{instance_id}/transitions", json=body, headers=headers)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = dict(response.json())
    assert body["code"] == code, body
    return body


# --- authentication ----------------------------------------------------------------------


async def test_no_token_is_401_with_a_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/instances")
    _problem(response, 401, "token_missing")
    assert response.headers["www-authenticate"] == 'Bearer realm="alur"'


async def test_expired_token_is_401(client: httpx.AsyncClient, auth_headers: TokenFactory) -> None:
    headers = auth_headers(["staf_ti"], ttl=timedelta(minutes=5), age=timedelta(minutes=10))
    response = await client.get("/v1/instances", headers=headers)
    _problem(response, 401, "token_expired")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_garbage_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/tasks", headers={"Authorization": "Bearer not.a.jwt"})
    _problem(response, 401, "invalid_token")
    assert response.headers["www-authenticate"].startswith('Bearer realm="alur", error=')


# --- starting ----------------------------------------------------------------------------


async def test_start_opens_the_entry_task_with_deadlines(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    response = await client.post(
        "/v1/instances",
        json={"sop": CONTENT, "title": "Berita sidang", "context": {"nomor": 7}},
        headers=auth_headers(["pembuat_artikel"]),
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/v1/instances/{body['id']}"
    assert (body["status"], body["satker"], body["context"]) == ("active", "pn-tais", {"nomor": 7})
    (task,) = body["tasks"]
    assert task["step_id"] == "siapkan_sumber_data"
    assert task["lane_name"] == "Pembuat Artikel masing-masing bagian"
    # "3 jam" of working time: warned at 80 %, due at the end.
    assert task["warn_at"] < task["due_at"]


async def test_start_at_an_unknown_entry_point_is_refused(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    response = await client.post(
        "/v1/instances",
        json={"sop": CONTENT, "title": "x", "entry_point": "arsip_konten"},
        headers=auth_headers(["admin_website"]),
    )
    _problem(response, 422, "invalid_entry_point")


async def test_start_of_an_unknown_sop_is_404(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    response = await client.post(
        "/v1/instances", json={"sop": "tidak-ada", "title": "x"}, headers=auth_headers(["admin"])
    )
    _problem(response, 404, "sop_not_found")


async def test_backdated_start_is_for_admins_and_deadlines_follow_it(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    started = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 08:00 WIB
    body = {"started_at": started.isoformat()}
    refused = await client.post(
        "/v1/instances",
        json={"sop": CONTENT, "title": "x", **body},
        headers=auth_headers(["pembuat_artikel"]),
    )
    _problem(refused, 403, "backdating_forbidden")
    instance = await _start(client, auth_headers(["pembuat_artikel", "admin"]), **body)
    assert instance["started_at"].startswith("2026-11-02T01:00:00")
    # 3 working hours from Monday 08:00 WIB: Monday 11:00 WIB.
    assert instance["tasks"][0]["due_at"].startswith("2026-11-02T04:00:00")
    assert instance["overdue"] is True


# --- transitions and authorisation -------------------------------------------------------


async def test_wrong_lane_is_403_and_nothing_changes(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    instance = await _start(client, auth_headers(["pembuat_artikel"]))
    response = await _transition(
        client, instance["id"], auth_headers(["staf_ti"]), step="siapkan_sumber_data"
    )
    body = _problem(response, 403, "lane_forbidden")
    assert "pembuat_artikel" in str(body)
    after = await client.get(f"/v1/instances/{instance['id']}", headers=auth_headers(["staf_ti"]))
    assert after.json()["version"] == 1


async def test_other_satker_sees_404(client: httpx.AsyncClient, auth_headers: TokenFactory) -> None:
    instance = await _start(client, auth_headers(["pembuat_artikel"]))
    stranger = auth_headers(["pembuat_artikel", "admin"], satker="pn-manna")
    read = await client.get(f"/v1/instances/{instance['id']}", headers=stranger)
    _problem(read, 404, "instance_not_found")
    write = await _transition(client, instance["id"], stranger, step="siapkan_sumber_data")
    _problem(write, 404, "instance_not_found")
    listed = await client.get("/v1/instances", headers=stranger)
    assert instance["id"] not in [item["id"] for item in listed.json()["items"]]


async def test_the_high_court_reads_and_acts_only_in_its_own_lane(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    court = auth_headers(["bagian_ptip", "sekretaris"])
    instance = await _start(client, court, sop="rkakl")
    for step in ("susun_usulan", "tanda_tangan_usulan", "kirim_ke_pt"):
        assert (await _transition(client, instance["id"], court, step=step)).status_code == 200

    high_court = auth_headers(["pt", "bagian_ptip"], satker="pt-bengkulu")
    read = await client.get(f"/v1/instances/{instance['id']}", headers=high_court)
    assert read.json()["current_steps"] == ["kirim_ke_ma"]
    inbox = await client.get("/v1/tasks", headers=high_court)
    assert instance["id"] in [task["instance_id"] for task in inbox.json()["items"]]

    done = await _transition(
        client, instance["id"], high_court, step="kirim_ke_ma", note="Diteruskan ke MA"
    )
    assert done.status_code == 200, done.text
    # Its `bagian_ptip` role is the high court's own office, not the district court's.
    refused = await _transition(client, instance["id"], high_court, step="terima_pagu_sementara")
    _problem(refused, 403, "lane_forbidden")


async def test_decision_needs_a_valid_outcome_and_loops(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    author, admin = auth_headers(["pembuat_artikel"]), auth_headers(["admin_website"])
    instance = await _start(client, author)
    for step in ("siapkan_sumber_data", "buat_konsep"):
        assert (await _transition(client, instance["id"], author, step=step)).status_code == 200
    missing = await _transition(client, instance["id"], admin, step="periksa_konsep")
    _problem(missing, 422, "outcome_required")
    wrong = await _transition(
        client, instance["id"], admin, step="periksa_konsep", outcome="mungkin"
    )
    assert "tidak_valid" in str(_problem(wrong, 422, "invalid_outcome"))
    looped = await _transition(
        client, instance["id"], admin, step="periksa_konsep", outcome="tidak_valid"
    )
    assert looped.json()["current_steps"] == ["buat_konsep"]
    assert [t["step_id"] for t in looped.json()["tasks"]].count("buat_konsep") == 2


async def test_if_match_is_honoured(client: httpx.AsyncClient, auth_headers: TokenFactory) -> None:
    author = auth_headers(["pembuat_artikel"])
    instance = await _start(client, author)
    stale = await client.post(
        f"/v1/instances/{instance['id']}/transitions",
        json={"step": "siapkan_sumber_data"},
        headers={**author, "If-Match": '"7"'},
    )
    assert _problem(stale, 412, "version_mismatch")["current_version"] == 1
    fresh = await client.post(
        f"/v1/instances/{instance['id']}/transitions",
        json={"step": "siapkan_sumber_data"},
        headers={**author, "If-Match": '"1"'},
    )
    assert fresh.status_code == 200
    assert fresh.headers["etag"] == '"2"'


async def test_concurrent_transitions_on_one_task_have_one_winner(
    client: httpx.AsyncClient, auth_headers: TokenFactory, engine: AsyncEngine
) -> None:
    author = auth_headers(["pembuat_artikel"])
    instance = await _start(client, author)
    responses = await asyncio.gather(
        *(
            _transition(client, instance["id"], author, step="siapkan_sumber_data")
            for _ in range(16)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 409, 412}, statuses
    for response in responses:
        if response.status_code != 200:
            assert response.headers["content-type"] == PROBLEM
    async with engine.connect() as connection:
        completed = await connection.scalar(
            sa.text(
                "SELECT count(*) FROM audit_event WHERE instance_id = :id "
                "AND type = 'task.completed'"
            ),
            {"id": instance["id"]},
        )
    assert completed == 1
    final = await client.get(f"/v1/instances/{instance['id']}", headers=author)
    assert final.json()["version"] == 2
    assert final.json()["current_steps"] == ["buat_konsep"]


async def test_cancel_needs_a_role_above_the_first_lane(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    instance = await _start(client, auth_headers(["pembuat_artikel"]))
    path = f"/v1/instances/{instance['id']}/cancel"
    peer = await client.post(path, json={"reason": "x"}, headers=auth_headers(["pembuat_artikel"]))
    _problem(peer, 403, "lane_forbidden")
    boss = await client.post(
        path, json={"reason": "Duplikat"}, headers=auth_headers(["kasubbag_ptip"])
    )
    assert boss.status_code == 200
    assert boss.json()["status"] == "cancelled"
    again = await client.post(path, json={"reason": "x"}, headers=auth_headers(["kasubbag_ptip"]))
    _problem(again, 409, "instance_closed")


async def test_claim_assign_release(client: httpx.AsyncClient, auth_headers: TokenFactory) -> None:
    budi = auth_headers(["pembuat_artikel"], sub="budi")
    siti = auth_headers(["pembuat_artikel"], sub="siti")
    instance = await _start(client, budi)
    task_id = instance["tasks"][0]["id"]
    claimed = await client.post(f"/v1/tasks/{task_id}/claim", headers=budi)
    assert claimed.json()["tasks"][0]["assignee"] == "budi"
    taken = await _transition(client, instance["id"], siti, task=task_id)
    _problem(taken, 403, "not_assignee")
    released = await client.post(f"/v1/tasks/{task_id}/release", headers=budi)
    assert released.json()["tasks"][0]["assignee"] is None
    assigned = await client.post(
        f"/v1/tasks/{task_id}/assign",
        json={"assignee": "siti"},
        headers=auth_headers(["kasubbag_ptip"]),
    )
    assert assigned.json()["tasks"][0]["assignee"] == "siti"
    assert (await _transition(client, instance["id"], siti, task=task_id)).status_code == 200


# --- idempotency -------------------------------------------------------------------------


async def test_idempotency_key_replays_the_first_response(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    headers = {**auth_headers(["pembuat_artikel"]), "Idempotency-Key": "berita-2026-11-24"}
    body = {"sop": CONTENT, "title": "Berita"}
    first = await client.post("/v1/instances", json=body, headers=headers)
    second = await client.post("/v1/instances", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    listed = await client.get(
        "/v1/instances", params={"sop": CONTENT, "limit": 200}, headers=headers
    )
    assert [i["id"] for i in listed.json()["items"]].count(first.json()["id"]) == 1

    reused = await client.post("/v1/instances", json={**body, "title": "Lain"}, headers=headers)
    _problem(reused, 422, "idempotency_key_reused")


async def test_concurrent_requests_with_one_key_start_one_instance(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    headers = {**auth_headers(["pembuat_artikel"], sub="paralel"), "Idempotency-Key": "sekali"}
    responses = await asyncio.gather(
        *(
            client.post("/v1/instances", json={"sop": CONTENT, "title": "x"}, headers=headers)
            for _ in range(8)
        )
    )
    ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(ids) == 1
    assert {r.status_code for r in responses} <= {201, 409}


# --- reading -----------------------------------------------------------------------------


async def test_list_filters_and_cursor_pagination(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    reader = auth_headers(["staf_ti"], sub="lister")
    wifi = auth_headers(["pengguna"])
    created = [(await _start(client, wifi, sop="wifi-internet"))["id"] for _ in range(5)]
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"sop": "wifi-internet", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/instances", params=params, headers=reader)).json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids))
    assert set(created) <= set(ids)
    keys = [(item["started_at"], item["id"]) for item in seen]
    assert keys == sorted(keys, reverse=True)
    by_lane = await client.get(
        "/v1/instances", params={"sop": "wifi-internet", "lane": "pengguna"}, headers=reader
    )
    assert set(created) <= {item["id"] for item in by_lane.json()["items"]}
    none = await client.get(
        "/v1/instances", params={"sop": "wifi-internet", "lane": "ketua"}, headers=reader
    )
    assert none.json()["items"] == []
    bad = await client.get("/v1/instances", params={"cursor": "###"}, headers=reader)
    _problem(bad, 422, "invalid_cursor")


async def test_inbox_lists_my_lane_overdue_first(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    admin = auth_headers(["pengguna", "admin"], satker="pn-bengkulu", sub="pemohon")
    old = await _start(client, admin, sop="wifi-internet", started_at="2026-11-02T01:00:00+00:00")
    new = await _start(client, admin, sop="wifi-internet")
    mine = await client.get("/v1/tasks", headers=auth_headers(["pengguna"], satker="pn-bengkulu"))
    items = mine.json()["items"]
    order = [item["instance_id"] for item in items]
    assert order.index(old["id"]) < order.index(new["id"])
    assert items[order.index(old["id"])]["overdue"] is True
    other_lane = await client.get(
        "/v1/tasks", headers=auth_headers(["staf_ti"], satker="pn-bengkulu")
    )
    assert old["id"] not in [item["instance_id"] for item in other_lane.json()["items"]]


# --- audit trail -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        ("UPDATE audit_event SET data = '{}' WHERE instance_id = :id AND seq = 2", "altered"),
        ("DELETE FROM outbox WHERE event_id IN (SELECT id FROM audit_event "
         "WHERE instance_id = :id AND seq = 4)", None),
        ("UPDATE audit_event SET actor = 'mallory' WHERE instance_id = :id AND seq = 1",
         "altered"),
    ],
)  # fmt: skip
async def test_tampering_with_the_trail_is_detected(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    engine: AsyncEngine,
    tamper: str,
    problem: str | None,
) -> None:
    author = auth_headers(["pembuat_artikel"])
    instance = await _start(client, author)
    await _transition(client, instance["id"], author, step="siapkan_sumber_data")
    audit = f"/v1/instances/{instance['id']}/audit"
    assert (await client.get(audit, headers=author)).json()["valid"] is True
    async with engine.begin() as connection:
        await connection.execute(sa.text(tamper), {"id": instance["id"]})
    report = (await client.get(audit, headers=author)).json()
    if problem is None:  # the outbox is not part of the trail
        assert report["valid"] is True
    else:
        assert report["valid"] is False
        assert any(problem in text for text in report["problems"])


async def test_deleting_the_newest_events_is_detected(
    client: httpx.AsyncClient, auth_headers: TokenFactory, engine: AsyncEngine
) -> None:
    author = auth_headers(["pembuat_artikel"])
    instance = await _start(client, author)
    await _transition(client, instance["id"], author, step="siapkan_sumber_data")
    async with engine.begin() as connection:
        await connection.execute(
            sa.text(
                "DELETE FROM outbox WHERE event_id IN (SELECT id FROM audit_event "
                "WHERE instance_id = :id AND seq >= 3)"
            ),
            {"id": instance["id"]},
        )
        await connection.execute(
            sa.text("DELETE FROM audit_event WHERE instance_id = :id AND seq >= 3"),
            {"id": instance["id"]},
        )
    report = (await client.get(f"/v1/instances/{instance['id']}/audit", headers=author)).json()
    assert report["valid"] is False
    assert "removed" in report["problems"][0]


async def test_every_event_has_an_outbox_row(
    client: httpx.AsyncClient, auth_headers: TokenFactory, engine: AsyncEngine
) -> None:
    author = auth_headers(["pembuat_artikel"])
    instance = await _start(client, author)
    await _transition(client, instance["id"], author, step="siapkan_sumber_data")
    events = (await client.get(f"/v1/instances/{instance['id']}/events", headers=author)).json()
    types = [event["type"] for event in events["items"]]
    assert types == ["instance.started", "task.opened", "task.completed", "task.opened"]
    completed = events["items"][2]["data"]
    assert completed["before"]["status"] == "open"
    assert completed["after"]["status"] == "completed"
    async with engine.connect() as connection:
        outbox = (
            await connection.execute(
                sa.text(
                    "SELECT o.type FROM outbox o JOIN audit_event e ON e.id = o.event_id "
                    "WHERE e.instance_id = :id ORDER BY e.seq"
                ),
                {"id": instance["id"]},
            )
        ).scalars()
        assert list(outbox) == types


async def test_a_command_answers_exactly_what_reading_the_instance_shows(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    # Commands write their answer with orjson, reads through the pydantic model: the same
    # JSON, field for field and byte for byte in every value (datetimes included).
    author = auth_headers(["pembuat_artikel"])
    instance = await _start(client, author)
    answered = await _transition(client, instance["id"], author, step="siapkan_sumber_data")
    assert answered.status_code == 200
    assert answered.headers["content-type"] == "application/json"
    read = await client.get(f"/v1/instances/{instance['id']}", headers=author)
    assert answered.headers["etag"] == read.headers["etag"] == '"2"'
    assert answered.json() == read.json()
    assert list(answered.json()) == list(read.json())
    completed = answered.json()["tasks"][0]
    assert completed["completed_at"].endswith("Z")
    assert completed["opened_at"] == read.json()["tasks"][0]["opened_at"]
