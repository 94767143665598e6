"""Acting officials (Plh/Plt): a Plh does the Kasubbag's task during the period and not
after it, whatever the age of their token; the audit trail says they acted for the role;
escalation reaches holders and acting holders, and a role nobody holds is reported."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt as pyjwt
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.context import AppContext
from services.core.catalog.loader import load_catalog
from services.core.db import session_factory, unit_of_work
from services.core.instances.deadlines import sweep
from services.core.people import acting
from services.core.people.models import PersonRecord
from services.core.satkers.service import load_directory
from services.core.settings import Settings, WorkerSettings
from services.core.shared import Services
from tests.people import (
    CONTENT,
    KASUBBAG_STEP,
    add_person,
    at_kasubbag_step,
    bearer,
    sign_in,
    unique,
)
from tests.support import TokenFactory

# The escalation levels of the default settings.
MULTIPLES = WorkerSettings().escalation_multiples


@pytest.fixture
def admin(auth_headers: TokenFactory) -> dict[str, str]:
    return auth_headers(["admin"], satker="pn-tais", sub="admin-tais")


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = dict(response.json())
    assert body["code"] == code, body
    return body


async def _complete(
    client: httpx.AsyncClient, instance_id: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(
        f"/v1/instances/{instance_id}/transitions", json={"step": KASUBBAG_STEP}, headers=headers
    )


async def _inbox(client: httpx.AsyncClient, headers: dict[str, str]) -> set[str]:
    response = await client.get("/v1/tasks", params={"mine": "true"}, headers=headers)
    assert response.status_code == 200, response.text
    return {item["instance_id"] for item in response.json()["items"]}


async def test_a_plh_completes_a_kasubbag_task_during_the_period_and_not_after_it(
    client: httpx.AsyncClient, admin: dict[str, str], auth_headers: TokenFactory
) -> None:
    holder = await add_person(client, admin, prefix="kasubbag", roles=("kasubbag_ptip",))
    plh = await add_person(client, admin, prefix="plh", roles=("staf_ti",))
    # Signed in before the assignment exists: the token knows nothing of it.
    token = await bearer(client, plh["username"])
    first = await at_kasubbag_step(client, auth_headers)
    second = await at_kasubbag_step(client, auth_headers)
    _problem(await _complete(client, first, token), 403, "lane_forbidden")
    assert first not in await _inbox(client, token)

    now = datetime.now(UTC)
    ends = now + timedelta(seconds=4)
    created = await client.post(
        f"/v1/people/{plh['username']}/acting",
        json={
            "role": "kasubbag_ptip",
            "from": (now - timedelta(minutes=1)).isoformat(),
            "to": ends.isoformat(),
            "reason": "Plh Kasubbag PTIP selama Kasubbag cuti",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assignment = created.json()
    assert (assignment["kind"], assignment["satker"], assignment["in_effect"]) == (
        "plh",
        "pn-tais",
        True,
    )
    # The one Kasubbag of the court is whom the Plh stands in for.
    assert assignment["holder"] == holder["username"]
    assert assignment["from"]
    assert assignment["to"]

    # During the period, with the same old token: the task is theirs, and they do it.
    assert {first, second} <= await _inbox(client, token)
    done = await _complete(client, first, token)
    assert done.status_code == 200, done.text
    events = (await client.get(f"/v1/instances/{first}/events", headers=token)).json()["items"]
    completed = next(
        e for e in events if e["type"] == "task.completed" and e["actor"] == plh["username"]
    )
    assert completed["acting_for"] == {
        "id": assignment["id"],
        "role": "kasubbag_ptip",
        "satker": "pn-tais",
        "kind": "plh",
        "holder": holder["username"],
    }
    # Everyone else in the trail acted in their own right.
    assert all(e["acting_for"] is None for e in events if e["actor"] != plh["username"])
    audit = await client.get(f"/v1/instances/{first}/audit", headers=token)
    assert audit.json()["valid"] is True, audit.json()

    # A token minted during the period tells other services about the assignment.
    fresh = (await sign_in(client, plh["username"])).json()["access_token"]
    claims = pyjwt.decode(fresh, options={"verify_signature": False})
    assert [(a["role"], a["kind"], a["holder"]) for a in claims["acting"]] == [
        ("kasubbag_ptip", "plh", holder["username"])
    ]
    assert claims["roles"] == ["staf_ti"]

    # After the period it is over by itself, for the same token and a fresh one.
    await asyncio.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 0.3)
    for headers in (token, {"Authorization": f"Bearer {fresh}"}):
        _problem(await _complete(client, second, headers), 403, "lane_forbidden")
        assert second not in await _inbox(client, headers)
    listed = await client.get(f"/v1/people/{plh['username']}/acting", headers=token)
    assert [item["in_effect"] for item in listed.json()["items"]] == [False]


async def test_someone_who_may_act_in_their_own_right_is_not_recorded_as_acting(
    client: httpx.AsyncClient, admin: dict[str, str], auth_headers: TokenFactory
) -> None:
    person = await add_person(client, admin, prefix="ganda", roles=("pembuat_artikel",))
    now = datetime.now(UTC)
    created = await client.post(
        f"/v1/people/{person['username']}/acting",
        json={
            "role": "kasubbag_ptip",
            "kind": "plt",
            "from": now.isoformat(),
            "to": (now + timedelta(days=30)).isoformat(),
            "reason": "Plt: jabatan Kasubbag kosong",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    own = await bearer(client, person["username"])
    started = await client.post(
        "/v1/instances", json={"sop": CONTENT, "title": "Sendiri"}, headers=own
    )
    assert started.status_code == 201, started.text
    events = (await client.get(f"/v1/instances/{started.json()['id']}/events", headers=own)).json()[
        "items"
    ]
    assert events
    assert all(e["acting_for"] is None for e in events)

    # The Plt's own role does the author's work; the Kasubbag's step needs the Plt.
    instance_id = await at_kasubbag_step(client, auth_headers)
    done = await _complete(client, instance_id, own)
    assert done.status_code == 200, done.text
    trail = (await client.get(f"/v1/instances/{instance_id}/events", headers=own)).json()
    by_person = [e for e in trail["items"] if e["actor"] == person["username"]]
    assert by_person
    assert all(e["acting_for"]["kind"] == "plt" for e in by_person)


async def test_ending_an_assignment_early_takes_the_role_away_at_once(
    client: httpx.AsyncClient, admin: dict[str, str], auth_headers: TokenFactory
) -> None:
    plh = await add_person(client, admin, prefix="plh")
    token = await bearer(client, plh["username"])
    now = datetime.now(UTC)
    created = await client.post(
        f"/v1/people/{plh['username']}/acting",
        json={
            "role": "kasubbag_ptip",
            "from": now.isoformat(),
            "to": (now + timedelta(days=3)).isoformat(),
            "reason": "Cuti tahunan",
        },
        headers=admin,
    )
    assignment = created.json()
    instance_id = await at_kasubbag_step(client, auth_headers)
    assert instance_id in await _inbox(client, token)

    _problem(
        await client.delete(
            f"/v1/people/{plh['username']}/acting/{assignment['id']}", headers=token
        ),
        403,
        "role_required",
    )
    ended = await client.delete(
        f"/v1/people/{plh['username']}/acting/{assignment['id']}", headers=admin
    )
    assert ended.status_code == 200, ended.text
    assert (ended.json()["in_effect"], ended.json()["ended_early_at"] is not None) == (False, True)
    _problem(await _complete(client, instance_id, token), 403, "lane_forbidden")
    missing = await client.delete(
        f"/v1/people/{plh['username']}/acting/00000000-0000-0000-0000-000000000000",
        headers=admin,
    )
    _problem(missing, 404, "acting_not_found")


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"role": "raja"}, 422, "unknown_role"),
        ({"to": "2020-01-01T00:00:00+07:00"}, 422, "invalid_acting"),
        ({"from": "2030-01-02T00:00:00+07:00", "to": "2030-01-01T00:00:00+07:00"}, 422,
         "invalid_acting"),
        ({"to": "2032-06-01T00:00:00+07:00"}, 422, "invalid_acting"),  # over 2 years
        ({"role": "staf_ti"}, 422, "invalid_acting"),  # holds it already
        ({"satker": "pn-manna"}, 404, "satker_not_found"),
        ({"satker": "pt-bengkulu"}, 404, "satker_not_found"),
        ({"kind": "pjs"}, 422, "validation_error"),
        ({"from": "2030-01-01T00:00:00"}, 422, "validation_error"),  # no offset
        ({"starts_at": "2030-01-01T00:00:00+07:00"}, 422, "validation_error"),
        ({"holder": "tidak-ada-orangnya"}, 404, "person_not_found"),
        ({"reason": ""}, 422, "validation_error"),
    ],
)  # fmt: skip
async def test_invalid_assignments_are_refused(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    person = await add_person(client, admin, password=None)
    body = {
        "role": "kasubbag_ptip",
        "from": "2029-12-30T08:00:00+07:00",
        "to": "2030-01-03T16:00:00+07:00",
        "reason": "Cuti",
        **change,
    }
    response = await client.post(
        f"/v1/people/{person['username']}/acting", json=body, headers=admin
    )
    _problem(response, status, code)


async def test_only_an_admin_of_the_persons_court_makes_assignments(
    client: httpx.AsyncClient, admin: dict[str, str], auth_headers: TokenFactory
) -> None:
    person = await add_person(client, admin, password=None)
    body = {
        "role": "kasubbag_ptip",
        "from": "2029-12-30T08:00:00+07:00",
        "to": "2030-01-03T16:00:00+07:00",
        "reason": "Cuti",
    }
    path = f"/v1/people/{person['username']}/acting"
    staff = auth_headers(["kasubbag_ptip"], sub="kasubbag-tais")
    _problem(await client.post(path, json=body, headers=staff), 403, "role_required")
    manna = auth_headers(["admin"], satker="pn-manna", sub="admin-manna")
    _problem(await client.post(path, json=body, headers=manna), 404, "person_not_found")
    high_court = auth_headers(["admin"], satker="pt-bengkulu", sub="admin-pt")
    assert (await client.post(path, json=body, headers=high_court)).status_code == 201


# --- escalation ---------------------------------------------------------------------------

# Monday 2 November 2026, 08:00 WIB: a working Monday (no holiday).
STARTED = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


async def test_escalation_reaches_holders_and_acting_holders_and_reports_nobody(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    engine: AsyncEngine,
    settings: Settings,
    app: FastAPI,
) -> None:
    high_court = auth_headers(["admin"], satker="pt-bengkulu", sub="admin-pt")
    satker = unique("pn-esk")
    created = await client.post(
        "/v1/satkers",
        json={"id": satker, "name": "PN Eskalasi", "parent": "pt-bengkulu"},
        headers=high_court,
    )
    assert created.status_code == 201, created.text
    staff = await add_person(
        client, high_court, prefix="staf", satker=satker, roles=("staf_ti",), password=None
    )
    plh = await add_person(
        client, high_court, prefix="plh", satker=satker, roles=("umum_keuangan",), password=None
    )
    away = await add_person(
        client, high_court, prefix="keluar", satker=satker, roles=("kasubbag_ptip",),
        password=None, active=False,
    )  # fmt: skip
    sessions = session_factory(engine)
    # The assignment as it was made at the time (the period lies in the past now).
    async with unit_of_work(sessions) as session:
        person = await session.get(PersonRecord, plh["username"])
        assert person is not None
        assignment = await acting.create(
            session,
            await load_directory(session),
            person,
            role="kasubbag_ptip",
            satker=satker,
            starts_at=STARTED - timedelta(days=1),
            ends_at=STARTED + timedelta(days=5),
            kind="plh",
            reason="Kasubbag cuti",
            holder=None,
            known_roles=_roles(settings),
            created_by="admin-pt",
            now=STARTED - timedelta(days=1),
        )
    # Nobody active holds the role itself: the Plh stands in for nobody in particular.
    assert assignment.holder is None

    started = await client.post(
        "/v1/instances",
        json={"sop": "wifi-internet", "title": "Akun", "started_at": STARTED.isoformat()},
        headers=auth_headers(["pengguna", "admin"], satker=satker),
    )
    assert started.status_code == 201, started.text
    instance_id = started.json()["id"]

    # 15 working minutes: due at 15, level 2 at 30, level 3 at 45 - all past at 90.
    services = Services(roles=_roles(settings))
    async with unit_of_work(sessions) as session:
        report = await sweep(
            session, services, STARTED + timedelta(minutes=90), multiples=MULTIPLES
        )
    assert report.unstaffed >= 1

    escalations = {
        data["to_role"]: data["to_people"]
        for kind, data in await _events(engine, instance_id)
        if kind == "task.escalated"
    }
    assert escalations["staf_ti"] == [{"username": staff["username"], "acting": None}]
    assert escalations["kasubbag_ptip"] == [
        {
            "username": plh["username"],
            "acting": {
                "id": assignment.id,
                "role": "kasubbag_ptip",
                "satker": satker,
                "kind": "plh",
                "holder": None,
            },
        }
    ]
    assert away["username"] not in json.dumps(escalations)
    assert escalations["sekretaris"] == []

    async with engine.connect() as connection:
        findings = (
            await connection.execute(
                sa.text(
                    "SELECT subject, data FROM finding WHERE type = 'role.unstaffed' "
                    "AND satker_id = :satker"
                ),
                {"satker": satker},
            )
        ).all()
        outbox = (
            await connection.execute(
                sa.text(
                    "SELECT count(*) FROM outbox WHERE type = 'role.unstaffed' "
                    "AND satker_id = :satker"
                ),
                {"satker": satker},
            )
        ).scalar_one()
    assert [subject for subject, _ in findings] == ["role:sekretaris"]
    data = findings[0][1] if isinstance(findings[0][1], dict) else json.loads(findings[0][1])
    assert (data["cause"], data["instance_id"], data["level"]) == ("escalation", instance_id, 3)
    assert outbox == 1

    metrics = (await client.get("/metrics")).text
    assert f'alur_escalations_unstaffed_total{{role="sekretaris",satker="{satker}"}} 1.0' in metrics

    # The same resolution, as notifications will ask for it: the high court's own lane
    # is held by the high court's people.
    pt_person = await add_person(
        client, high_court, prefix="pt", satker="pt-bengkulu", roles=("pt",), password=None
    )
    context: AppContext = app.state.context
    async with unit_of_work(sessions) as session:
        directory = await context.services.directory(session, satker)
        holders = await acting.role_holders(
            session, directory, [(satker, "pt"), (satker, "kasubbag_ptip")], STARTED
        )
    assert pt_person["username"] in [h.username for h in holders[(satker, "pt")]]
    assert [h.username for h in holders[(satker, "kasubbag_ptip")]] == [plh["username"]]


def _roles(settings: Settings) -> dict[str, Any]:
    return {role.id: role for role in load_catalog(settings.catalog.path).roles}


async def _events(engine: AsyncEngine, instance_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT type, data FROM audit_event WHERE instance_id = :id ORDER BY seq"),
            {"id": instance_id},
        )
        return [
            (row.type, json.loads(row.data) if isinstance(row.data, str) else row.data)
            for row in rows
        ]
