"""Alur's own sign-in: Argon2id, lockout, TOTP, refresh and revocation, and tokens other
services verify with PyJWT (not python-jose, which Alur uses) from the published JWKS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt as pyjwt
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.context import AppContext
from services.core.identity.tokens import TokenExpired
from services.core.settings import Settings
from tests.people import PASSWORD, add_person, bearer, rfc6238, sign_in
from tests.support import TokenFactory, serving

PROBLEM = "application/problem+json"


@pytest.fixture
def admin(auth_headers: TokenFactory) -> dict[str, str]:
    return auth_headers(["admin"], satker="pn-tais", sub="admin-tais")


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = dict(response.json())
    assert body["code"] == code, body
    return body


def _context(app: FastAPI) -> AppContext:
    context: AppContext = app.state.context
    return context


async def _verify_elsewhere(client: httpx.AsyncClient, token: str, settings: Settings) -> Any:
    """What another service does: fetch the JWKS, verify with PyJWT."""
    jwks = await client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert jwks.headers["content-type"] == "application/jwk-set+json"
    assert "max-age" in jwks.headers["cache-control"]
    keys = pyjwt.PyJWKSet.from_dict(jwks.json())
    kid = pyjwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    return pyjwt.decode(
        token,
        key.key,
        algorithms=["ES256"],
        audience=settings.auth.audience,
        issuer=settings.auth.issuer,
    )


async def test_sign_in_issues_short_tokens_other_services_verify(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings, engine: AsyncEngine
) -> None:
    person = await add_person(client, admin, roles=("staf_ti", "pengguna"))
    response = await sign_in(client, person["username"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.auth.access_token_minutes * 60 == 900
    assert body["refresh_expires_in"] == settings.auth.refresh_token_days * 86400

    claims = await _verify_elsewhere(client, body["access_token"], settings)
    assert claims["sub"] == person["username"]
    assert sorted(claims["roles"]) == ["pengguna", "staf_ti"]
    assert (claims["satker"], claims["name"], claims["acting"]) == ("pn-tais", person["name"], [])
    assert claims["exp"] - claims["iat"] == 900

    inbox = await client.get(
        "/v1/tasks", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert inbox.status_code == 200, inbox.text

    # Argon2id with the configured cost; the refresh token is kept as its hash only.
    async with engine.connect() as connection:
        stored = (
            await connection.execute(
                sa.text("SELECT password_hash FROM person WHERE username = :u"),
                {"u": person["username"]},
            )
        ).scalar_one()
        hashes = (
            await connection.execute(
                sa.text("SELECT token_hash FROM refresh_token WHERE username = :u"),
                {"u": person["username"]},
            )
        ).scalars()
        assert body["refresh_token"] not in list(hashes)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


async def test_wrong_and_unknown_credentials_look_alike_and_are_logged_without_them(
    client: httpx.AsyncClient, admin: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    person = await add_person(client, admin)
    caplog.set_level(logging.INFO)
    wrong = await sign_in(client, person["username"], "sandi-yang-salah-sekali")
    unknown = await sign_in(client, "nobody-here", "sandi-yang-salah-sekali")
    odd = await sign_in(client, "Robert'); DROP TABLE person;--", "sandi-yang-salah-sekali")
    for response in (wrong, unknown, odd):
        problem = _problem(response, 400, "invalid_grant")
        assert problem["error"] == "invalid_grant"
        assert problem["detail"] == "Wrong username or password"
    good = await sign_in(client, person["username"])
    assert good.status_code == 200

    lines = [dict(r.msg) for r in caplog.records if isinstance(r.msg, dict)]
    outcomes = [
        (line["event"], line.get("reason"))
        for line in lines
        if line.get("username") in (person["username"], "nobody-here")
    ]
    assert ("sign-in failed", "wrong_password") in outcomes
    assert ("sign-in failed", "unknown_username") in outcomes
    assert ("sign-in", None) in outcomes
    text = caplog.text + repr(lines)
    assert "sandi-yang-salah-sekali" not in text
    assert PASSWORD not in text


async def test_form_fields_are_checked(client: httpx.AsyncClient) -> None:
    for data in (
        {"username": "budi"},
        {"username": "budi", "password": "x", "grant_type": "client_credentials"},
        {"username": "budi", "password": "x", "extra": "1"},
        {"username": "budi\x00", "password": "x"},
        {"username": "budi", "password": "x", "totp": "12345a"},
    ):
        _problem(await client.post("/v1/auth/token", data=data), 422, "validation_error")
    as_json = await client.post("/v1/auth/token", json={"username": "budi", "password": "x"})
    _problem(as_json, 422, "validation_error")


@pytest.fixture
async def strict(migrated: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app that locks after 3 failures per username and 5 per address, for 2 s."""
    auth = migrated.auth.model_copy(
        update={
            "lockout_username_failures": 3,
            "lockout_address_failures": 5,
            "lockout_seconds": 2,
        }
    )
    async with serving(migrated.model_copy(update={"auth": auth})) as served:
        yield served


def _from(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://alur.test")


async def test_failures_lock_the_username_then_the_address_for_a_while(
    strict: tuple[FastAPI, httpx.AsyncClient], admin: dict[str, str]
) -> None:
    app, client = strict
    person = await add_person(client, admin)
    username = person["username"]
    async with _from(app, "10.9.8.1") as first, _from(app, "10.9.8.2") as second:
        for _ in range(3):
            _problem(await sign_in(first, username, "salah-salah-salah"), 400, "invalid_grant")
        # Locked: even the right password is refused, from any address, with a wait.
        for place in (first, second):
            locked = await sign_in(place, username)
            problem = _problem(locked, 429, "too_many_requests")
            assert 1 <= int(locked.headers["retry-after"]) <= 2
            assert problem["retry_after"] == int(locked.headers["retry-after"])

        # Guessing other usernames from one address locks the address.
        for index in range(2):
            await sign_in(first, f"tebakan-{index}", "salah-salah-salah")
        _problem(await sign_in(first, "siapa-saja", "apa-saja-boleh"), 429, "too_many_requests")

        await asyncio.sleep(2.2)
        assert (await sign_in(second, username)).status_code == 200
        assert (await sign_in(first, username)).status_code == 200


async def test_totp_enrolment_and_sign_in_with_codes_from_another_implementation(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    person = await add_person(client, admin)
    username = person["username"]
    own = await bearer(client, username)

    _problem(
        await client.post(
            f"/v1/people/{username}/totp", json={"password": "bukan-sandinya"}, headers=own
        ),
        403,
        "wrong_password",
    )
    begun = await client.post(
        f"/v1/people/{username}/totp", json={"password": PASSWORD}, headers=own
    )
    assert begun.status_code == 201, begun.text
    secret = begun.json()["secret"]
    assert begun.json()["otpauth_uri"].startswith(f"otpauth://totp/Alur:{username}?secret={secret}")
    # Not in force until confirmed: sign-in still needs no code.
    assert (await sign_in(client, username)).status_code == 200

    wrong_code = "000000" if rfc6238(secret, datetime.now(UTC)) != "000000" else "111111"
    _problem(
        await client.post(
            f"/v1/people/{username}/totp/confirm", json={"code": wrong_code}, headers=own
        ),
        422,
        "invalid_totp",
    )
    confirmed = await client.post(
        f"/v1/people/{username}/totp/confirm",
        json={"code": rfc6238(secret, datetime.now(UTC))},
        headers=own,
    )
    assert confirmed.status_code == 204, confirmed.text
    me = await client.get(f"/v1/people/{username}", headers=own)
    assert me.json()["totp_enabled"] is True

    _problem(await sign_in(client, username), 400, "totp_required")
    _problem(await sign_in(client, username, totp=wrong_code), 400, "invalid_grant")
    # The code used to confirm is spent; the next step's code (drift allowed) is good.
    later = rfc6238(secret, datetime.now(UTC) + timedelta(seconds=30))
    good = await sign_in(client, username, totp=later)
    assert good.status_code == 200, good.text
    _problem(await sign_in(client, username, totp=later), 400, "invalid_grant")

    # Enabled: a second enrolment is refused until an admin turns it off.
    again = await client.post(
        f"/v1/people/{username}/totp", json={"password": PASSWORD}, headers=own
    )
    _problem(again, 409, "totp_already_enabled")
    _problem(await client.delete(f"/v1/people/{username}/totp", headers=own), 403, "role_required")
    assert (await client.delete(f"/v1/people/{username}/totp", headers=admin)).status_code == 204
    assert (await sign_in(client, username)).status_code == 200


async def test_refresh_rotates_and_a_reused_token_revokes_its_family(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    person = await add_person(client, admin)
    first = (await sign_in(client, person["username"])).json()

    second = await client.post(
        "/v1/auth/refresh",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert second.status_code == 200, second.text
    assert second.headers["cache-control"] == "no-store"
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    claims = await _verify_elsewhere(client, rotated["access_token"], settings)
    assert claims["sub"] == person["username"]

    # The first token again: stolen, so every token of that sign-in is revoked.
    reused = await client.post("/v1/auth/refresh", data={"refresh_token": first["refresh_token"]})
    assert "reused" in _problem(reused, 400, "invalid_grant")["detail"]
    revoked = await client.post(
        "/v1/auth/refresh", data={"refresh_token": rotated["refresh_token"]}
    )
    _problem(revoked, 400, "invalid_grant")
    unknown = await client.post("/v1/auth/refresh", data={"refresh_token": "made-up"})
    _problem(unknown, 400, "invalid_grant")


async def test_logout_and_deactivation_end_access_within_one_token_lifetime(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI
) -> None:
    person = await add_person(client, admin)
    session_one = (await sign_in(client, person["username"])).json()
    session_two = (await sign_in(client, person["username"])).json()

    assert (
        await client.post("/v1/auth/logout", data={"refresh_token": session_one["refresh_token"]})
    ).status_code == 204
    _problem(
        await client.post("/v1/auth/refresh", data={"refresh_token": session_one["refresh_token"]}),
        400,
        "invalid_grant",
    )
    # RFC 7009: an unknown token is not an error.
    assert (
        await client.post("/v1/auth/logout", data={"refresh_token": "tidak-ada"})
    ).status_code == 204

    deactivated = await client.patch(
        f"/v1/people/{person['username']}", json={"active": False}, headers=admin
    )
    assert deactivated.status_code == 200, deactivated.text
    _problem(
        await client.post("/v1/auth/refresh", data={"refresh_token": session_two["refresh_token"]}),
        400,
        "invalid_grant",
    )
    _problem(await sign_in(client, person["username"]), 400, "invalid_grant")
    # The access token in hand works until it expires, and not a moment longer.
    verifier = _context(app).verifier
    token = session_two["access_token"]
    assert verifier.verify(token).sub == person["username"]
    with pytest.raises(TokenExpired):
        verifier.verify(token, now=datetime.now(UTC) + timedelta(minutes=15, seconds=31))


async def test_a_person_without_a_password_cannot_sign_in(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    person = await add_person(client, admin, password=None)
    _problem(await sign_in(client, person["username"], "apa-saja-boleh"), 400, "invalid_grant")
