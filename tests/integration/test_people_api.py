"""`/v1/people` over HTTP: who may manage whom, what a person may change, and what is
refused (with the reason, never a 500)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.people import PASSWORD, add_person, bearer, random_nip, sign_in, unique
from tests.support import TokenFactory

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = dict(response.json())
    assert body["code"] == code, body
    return body


@pytest.fixture
def admin(auth_headers: TokenFactory) -> dict[str, str]:
    return auth_headers(["admin"], satker="pn-tais", sub="admin-tais")


async def test_an_admin_adds_a_person_with_checked_contacts(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    username = unique("siti")
    response = await client.post(
        "/v1/people",
        json={
            "username": username,
            "name": "Siti Aminah, S.Kom.",
            "nip": random_nip(),
            "roles": ["staf_ti", "admin_website"],
            "email": "siti@pn-tais.go.id",
            "whatsapp": "0812-3456-7890",
            "telegram_chat_id": "123456789",
            "password": PASSWORD,
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v1/people/{username}"
    person = response.json()
    assert person["satker"] == "pn-tais"  # the admin's own by default
    assert person["whatsapp"] == "+6281234567890"
    assert person["roles"] == ["admin_website", "staf_ti"]
    assert (person["has_password"], person["totp_enabled"], person["active"]) == (
        True,
        False,
        True,
    )
    assert "password" not in person
    assert "password_hash" not in person

    again = await client.get(f"/v1/people/{username}", headers=admin)
    assert again.json() == person


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"nip": "198702302010122002"}, "body.nip"),
        ({"whatsapp": "12345"}, "body.whatsapp"),
        ({"email": "siti at pn-tais"}, "body.email"),
        ({"telegram_chat_id": "@siti"}, "body.telegram_chat_id"),
        ({"username": "Siti Aminah"}, "body.username"),
        ({"password": "pendek"}, "body.password"),
        ({"roles": ["staf_ti"] * 31}, "body.roles"),
        ({"name": "Siti\x00"}, "body"),
        ({"level": 3}, "body.level"),
    ],
)
async def test_invalid_people_are_refused_with_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], change: dict[str, Any], location: str
) -> None:
    body = {"username": unique("siti"), "name": "Siti", "roles": ["staf_ti"], **change}
    response = await client.post("/v1/people", json=body, headers=admin)
    problem = _problem(response, 422, "validation_error")
    assert any(e["location"].startswith(location) for e in problem["errors"]), problem


async def test_unknown_roles_taken_usernames_and_nips_are_refused(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/people",
        json={"username": unique("x"), "name": "X", "roles": ["staf_ti", "raja"]},
        headers=admin,
    )
    assert _problem(response, 422, "unknown_role")["unknown_roles"] == ["raja"]

    nip = random_nip()
    first = await add_person(client, admin, nip=nip, password=None)
    taken = await client.post(
        "/v1/people",
        json={"username": first["username"], "name": "Lagi", "roles": []},
        headers=admin,
    )
    _problem(taken, 409, "person_exists")
    same_nip = await client.post(
        "/v1/people", json={"username": unique("y"), "name": "Y", "nip": nip}, headers=admin
    )
    _problem(same_nip, 409, "nip_taken")


async def test_a_parent_court_admin_manages_its_children_and_no_one_else(
    client: httpx.AsyncClient, admin: dict[str, str], auth_headers: TokenFactory
) -> None:
    high_court = auth_headers(["admin"], satker="pt-bengkulu", sub="admin-pt")
    created = await client.post(
        "/v1/people",
        json={"username": unique("pn"), "name": "Di PN", "satker": "pn-tais", "roles": []},
        headers=high_court,
    )
    assert created.status_code == 201, created.text
    username = created.json()["username"]

    # The district court's own admin sees them too; a sibling court's admin does not.
    assert (await client.get(f"/v1/people/{username}", headers=admin)).status_code == 200
    manna = auth_headers(["admin"], satker="pn-manna", sub="admin-manna")
    _problem(await client.get(f"/v1/people/{username}", headers=manna), 404, "person_not_found")
    _problem(
        await client.patch(f"/v1/people/{username}", json={"name": "X"}, headers=manna),
        404,
        "person_not_found",
    )
    # ... nor can it add people to the high court, above it.
    upward = await client.post(
        "/v1/people",
        json={"username": unique("pt"), "name": "Di PT", "satker": "pt-bengkulu"},
        headers=admin,
    )
    _problem(upward, 404, "satker_not_found")

    listed = await client.get("/v1/people", params={"satker": "pn-tais"}, headers=high_court)
    assert username in [p["username"] for p in listed.json()["items"]]
    _problem(
        await client.get("/v1/people", params={"satker": "pt-bengkulu"}, headers=admin),
        404,
        "satker_not_found",
    )


async def test_non_admins_cannot_manage_people(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    staff = auth_headers(["staf_ti"])
    _problem(await client.get("/v1/people", headers=staff), 403, "role_required")
    response = await client.post(
        "/v1/people", json={"username": unique("z"), "name": "Z"}, headers=staff
    )
    _problem(response, 403, "role_required")


async def test_a_person_reads_themselves_and_edits_only_their_contacts(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    person = await add_person(client, admin, prefix="budi")
    other = await add_person(client, admin, prefix="rina")
    own = await bearer(client, person["username"])

    me = await client.get(f"/v1/people/{person['username']}", headers=own)
    assert me.status_code == 200, me.text
    _problem(
        await client.get(f"/v1/people/{other['username']}", headers=own), 404, "person_not_found"
    )

    changed = await client.patch(
        f"/v1/people/{person['username']}",
        json={"whatsapp": "+62 813 1111 2222", "email": None},
        headers=own,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["whatsapp"], changed.json()["email"]) == ("+6281311112222", None)

    promoted = await client.patch(
        f"/v1/people/{person['username']}", json={"roles": ["admin"]}, headers=own
    )
    assert _problem(promoted, 403, "person_field_forbidden")["fields"] == ["roles"]
    _problem(
        await client.patch(f"/v1/people/{person['username']}", json={"active": False}, headers=own),
        403,
        "person_field_forbidden",
    )
    _problem(
        await client.patch(f"/v1/people/{person['username']}", json={"name": None}, headers=admin),
        422,
        "validation_error",
    )


async def test_listing_filters_by_role_and_pages(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    # A court of its own, so the listing holds only this test's people.
    admin = auth_headers(["admin"], satker="pt-bengkulu", sub="admin-pt")
    satker = unique("pn-list")
    created = await client.post(
        "/v1/satkers",
        json={"id": satker, "name": "PN Daftar", "parent": "pt-bengkulu"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    for index in range(5):
        await add_person(
            client,
            admin,
            prefix=f"p{index}",
            satker=satker,
            roles=("kasubbag_ptip",) if index % 2 else ("staf_ti",),
            password=None,
        )
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"satker": satker, "limit": 2}
        if after:
            params["after"] = after
        page = (await client.get("/v1/people", params=params, headers=admin)).json()
        assert len(page["items"]) <= 2
        seen += [p["username"] for p in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert len(seen) == 5
    assert seen == sorted(seen)
    kasubbag = await client.get(
        "/v1/people", params={"satker": satker, "role": "kasubbag_ptip"}, headers=admin
    )
    assert len(kasubbag.json()["items"]) == 2


async def test_password_changes_need_the_current_one_and_sign_out_elsewhere(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    person = await add_person(client, admin)
    username = person["username"]
    signed_in = (await sign_in(client, username)).json()
    own = {"Authorization": f"Bearer {signed_in['access_token']}"}

    wrong = await client.post(
        f"/v1/people/{username}/password",
        json={"current_password": "bukan-sandinya", "new_password": "teh-manis-sore-hari"},
        headers=own,
    )
    _problem(wrong, 403, "wrong_password")
    missing = await client.post(
        f"/v1/people/{username}/password",
        json={"new_password": "teh-manis-sore-hari"},
        headers=own,
    )
    _problem(missing, 403, "wrong_password")
    changed = await client.post(
        f"/v1/people/{username}/password",
        json={"current_password": PASSWORD, "new_password": "teh-manis-sore-hari"},
        headers=own,
    )
    assert changed.status_code == 204, changed.text

    # The session of the old password is over (its refresh token); the new one works.
    refreshed = await client.post(
        "/v1/auth/refresh", data={"refresh_token": signed_in["refresh_token"]}
    )
    _problem(refreshed, 400, "invalid_grant")
    assert (await sign_in(client, username)).status_code == 400
    assert (await sign_in(client, username, "teh-manis-sore-hari")).status_code == 200

    # An admin sets a password without knowing the old one.
    reset = await client.post(
        f"/v1/people/{username}/password", json={"new_password": PASSWORD}, headers=admin
    )
    assert reset.status_code == 204, reset.text
    assert (await sign_in(client, username)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/v1/people/budi%00santoso", None),
        ("GET", "/v1/people/BUDI", None),
        ("GET", "/v1/people", {"satker": "pn-tais\x00"}),
        ("GET", "/v1/people", {"role": "staf_ti\x00"}),
        ("GET", "/v1/people", {"after": "b\x00"}),
        ("GET", "/v1/people", {"limit": "100000000000000000000000"}),
        ("DELETE", "/v1/people/budi/acting/x%00", None),
    ],
)
async def test_odd_paths_and_queries_are_refused_not_failed(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    method: str,
    path: str,
    params: dict[str, str] | None,
) -> None:
    response = await client.request(method, path, params=params, headers=admin)
    _problem(response, 422, "validation_error")
