"""The court tree and local calendar overrides over HTTP."""

from __future__ import annotations

import httpx

from tests.support import TokenFactory


async def test_admin_adds_a_court_below_the_high_court(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    high_court = auth_headers(["admin"], satker="pt-bengkulu")
    created = await client.post(
        "/v1/satkers",
        json={"id": "pn-arga-makmur", "name": "Pengadilan Negeri Arga Makmur",
              "parent": "pt-bengkulu"},
        headers=high_court,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    seen = {s["id"] for s in (await client.get("/v1/satkers", headers=high_court)).json()["items"]}
    assert {"pt-bengkulu", "pn-tais", "pn-arga-makmur"} <= seen
    district = auth_headers(["admin"], satker="pn-tais")
    own = {s["id"] for s in (await client.get("/v1/satkers", headers=district)).json()["items"]}
    assert own == {"pn-tais"}
    again = await client.post(
        "/v1/satkers", json={"id": "pn-arga-makmur", "name": "x"}, headers=high_court
    )
    assert again.json()["code"] == "satker_exists"
    clerk = await client.post(
        "/v1/satkers", json={"id": "pn-x", "name": "x"}, headers=auth_headers(["staf_ti"])
    )
    assert (clerk.status_code, clerk.json()["code"]) == (403, "role_required")


async def test_a_local_day_off_moves_deadlines(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    admin = auth_headers(["admin", "pengguna"], satker="pn-bengkulu")
    # Monday 16 November 2026, 15:50 WIB: "15 menit" runs into Tuesday when Monday 16:30 ends.
    started = "2026-11-16T08:50:00+00:00"
    before = await client.post(
        "/v1/instances",
        json={"sop": "wifi-internet", "title": "a", "started_at": started},
        headers=admin,
    )
    assert before.json()["tasks"][0]["due_at"].startswith("2026-11-16T09:05")
    override = await client.post(
        "/v1/satkers/pn-bengkulu/calendar-overrides",
        json={"kind": "day_off", "start_date": "2026-11-16", "end_date": "2026-11-16",
              "reason": "Hari jadi Provinsi Bengkulu"},
        headers=admin,
    )  # fmt: skip
    assert override.status_code == 201, override.text
    after = await client.post(
        "/v1/instances",
        json={"sop": "wifi-internet", "title": "b", "started_at": started},
        headers=admin,
    )
    # Monday is now a day off: the 15 minutes are Tuesday's first (08:00-08:15 WIB).
    assert after.json()["tasks"][0]["due_at"].startswith("2026-11-17T01:15")
    listed = await client.get("/v1/satkers/pn-bengkulu/calendar-overrides", headers=admin)
    assert [o["reason"] for o in listed.json()["items"]] == ["Hari jadi Provinsi Bengkulu"]
    bad = await client.post(
        "/v1/satkers/pn-bengkulu/calendar-overrides",
        json={"kind": "special_hours", "start_date": "2026-02-19", "end_date": "2026-03-19",
              "hours": {"monday": ["25:00-26:00"]}, "reason": "Ramadan"},
        headers=admin,
    )  # fmt: skip
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_calendar_override")
