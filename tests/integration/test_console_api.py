"""What the console needs from the API: who the caller is (`/v1/me`), role names
(`/v1/roles`), inbox rows a person can read, and the heads' overview (`/v1/overview`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.catalog.loader import load_catalog
from services.core.db import session_factory, unit_of_work
from services.core.instances.deadlines import sweep
from services.core.settings import Settings, WorkerSettings
from services.core.shared import Services
from tests.people import unique
from tests.support import TokenFactory

pytestmark = pytest.mark.db

HIGH_COURT = "pt-bengkulu"


async def _satker(client: httpx.AsyncClient, auth_headers: TokenFactory) -> str:
    """A district court of the test's own, below the high court, so counts are its own."""
    satker = unique("pn-ov")
    created = await client.post(
        "/v1/satkers",
        json={"id": satker, "name": "PN Ikhtisar", "parent": HIGH_COURT},
        headers=auth_headers(["admin"], satker=HIGH_COURT, sub="admin-pt"),
    )
    assert created.status_code == 201, created.text
    return satker


async def _start(
    client: httpx.AsyncClient, headers: dict[str, str], title: str, started_at: datetime | None
) -> str:
    body: dict[str, object] = {"sop": "wifi-internet", "title": title}
    if started_at is not None:
        body["started_at"] = started_at.isoformat()
    response = await client.post("/v1/instances", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_me_names_the_satker_roles_and_flags(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    staff = await client.get(
        "/v1/me", headers=auth_headers(["staf_ti"], sub="budi", name="Budi Santoso")
    )
    assert staff.status_code == 200, staff.text
    me = staff.json()
    assert me["sub"] == "budi"
    assert me["name"] == "Budi Santoso"
    assert me["satker"]["id"] == "pn-tais"
    assert me["satker"]["timezone"] == "Asia/Jakarta"
    assert me["roles"] == [{"id": "staf_ti", "name": "Staf TI"}]
    assert (me["admin"], me["supervisor"], me["acting"]) == (False, False, [])

    head = (await client.get("/v1/me", headers=auth_headers(["kasubbag_ptip"]))).json()
    assert (head["admin"], head["supervisor"]) == (False, True)
    admin = (await client.get("/v1/me", headers=auth_headers(["admin"]))).json()
    assert (admin["admin"], admin["supervisor"]) == (True, True)

    anonymous = await client.get("/v1/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")


async def test_roles_lists_every_lane_with_its_name(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/roles")
    assert response.status_code == 200
    roles = {role["id"]: role for role in response.json()["items"]}
    assert roles["kasubbag_ptip"]["name"] == "Kasubbag Perencanaan, TI dan Pelaporan"
    assert roles["kasubbag_ptip"]["supervisor"] is True
    assert roles["staf_ti"]["supervisor"] is False
    assert roles["satgas_sipp"]["external"] is True


async def test_inbox_rows_carry_what_a_person_reads(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    satker = await _satker(client, auth_headers)
    user = auth_headers(["pengguna"], satker=satker)
    instance_id = await _start(client, user, "Akun WiFi ruang sidang", None)
    inbox = (await client.get("/v1/tasks?mine=true", headers=user)).json()["items"]
    [row] = [item for item in inbox if item["instance_id"] == instance_id]
    assert row["instance_title"] == "Akun WiFi ruang sidang"
    assert (row["sop"], row["sop_number"], row["sop_title"]) == (
        "wifi-internet",
        8,
        "Penggunaan WiFi/Internet",
    )
    assert (row["step_number"], row["activity"]) == (
        1,
        "Calon pengguna mengajukan permohonan password",
    )
    assert row["lane_name"] == "User (calon pengguna WiFi/Internet)"
    assert (row["overdue"], row["late_by"], row["outcomes"]) == (False, None, None)


async def test_a_late_task_says_how_late_in_working_time(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    satker = await _satker(client, auth_headers)
    clerk = auth_headers(["pengguna", "admin"], satker=satker)
    # Begun on paper a fortnight ago: step 1 ("15 menit") is days of working time late.
    started = datetime.now(UTC) - timedelta(days=14)
    instance_id = await _start(client, clerk, "Akun lama", started)
    inbox = (await client.get("/v1/tasks?mine=true", headers=clerk)).json()["items"]
    [row] = [item for item in inbox if item["instance_id"] == instance_id]
    assert row["overdue"] is True
    # Two calendar weeks hold at least eight working days whatever the holidays.
    late = row["late_by"]
    assert late.startswith("P"), late
    days = int(late[1 : late.index("D")])
    assert 8 <= days <= 10, late


async def test_overview_counts_open_overdue_and_escalated_work_for_heads(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    engine: AsyncEngine,
    settings: Settings,
) -> None:
    satker = await _satker(client, auth_headers)
    clerk = auth_headers(["pengguna", "admin"], satker=satker)
    late_id = await _start(client, clerk, "Terlambat", datetime.now(UTC) - timedelta(days=3))
    await _start(client, clerk, "Baru", None)
    claimed = await _start(client, clerk, "Diambil", None)
    instance = (await client.get(f"/v1/instances/{claimed}", headers=clerk)).json()
    taker = auth_headers(["pengguna"], satker=satker, sub="andi")
    took = await client.post(f"/v1/tasks/{instance['tasks'][0]['id']}/claim", headers=taker)
    assert took.status_code == 200, took.text

    catalog = load_catalog(settings.catalog.path)
    services = Services(roles={role.id: role for role in catalog.roles})
    async with unit_of_work(session_factory(engine)) as session:
        await sweep(
            session, services, datetime.now(UTC), multiples=WorkerSettings().escalation_multiples
        )

    staff = await client.get("/v1/overview", headers=auth_headers(["staf_ti"], satker=satker))
    assert staff.status_code == 403
    assert staff.json()["code"] == "role_required"

    head = auth_headers(["kasubbag_ptip"], satker=satker)
    response = await client.get("/v1/overview", headers=head)
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["satker"] == satker
    assert view["total"] == {"open": 3, "overdue": 1, "escalated": 1}
    assert view["by_sop"] == [
        {
            "sop": "wifi-internet",
            "sop_number": 8,
            "sop_title": "Penggunaan WiFi/Internet",
            "open": 3,
            "overdue": 1,
            "escalated": 1,
        }
    ]
    assert view["by_person"] == [{"assignee": "andi", "open": 1, "overdue": 0, "escalated": 0}]
    assert view["unassigned_by_lane"] == [
        {
            "lane": "pengguna",
            "lane_name": "User (calon pengguna WiFi/Internet)",
            "open": 2,
            "overdue": 1,
            "escalated": 1,
        }
    ]
    [escalated] = view["escalated"]
    assert escalated["instance_id"] == late_id
    assert escalated["escalation_level"] >= 1
    assert escalated["late_by"] is not None

    # From the high court, the district court's work is in its tree; another court's not.
    upper = auth_headers(["ketua"], satker=HIGH_COURT)
    from_above = (await client.get(f"/v1/overview?satker={satker}", headers=upper)).json()
    assert from_above["total"]["open"] == 3
    hidden = await client.get("/v1/overview?satker=pt-bengkulu", headers=head)
    assert hidden.status_code == 404


@pytest.mark.parametrize(
    "query", ["satker=" + "x" * 65, "satker=%00", "satker=tidak-ada", "satker=a&satker=b&x=1"]
)
async def test_overview_refuses_bad_queries_without_a_500(
    client: httpx.AsyncClient, auth_headers: TokenFactory, query: str
) -> None:
    response = await client.get(f"/v1/overview?{query}", headers=auth_headers(["ketua"]))
    assert response.status_code in {200, 404, 422}, response.text
    assert response.status_code != 200 or query.startswith("satker=a")
