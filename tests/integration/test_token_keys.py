"""Alur's signing keys rotate without signing anybody out, across replicas; an identity
provider's keys (a JWKS URL on a real HTTP server) are trusted beside Alur's own."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt as pyjwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.auth import keys
from services.core.db import session_factory, unit_of_work, utcnow
from services.core.identity import jwks as remote_jwks
from services.core.people import acting
from services.core.settings import PROJECT_ROOT, Settings
from tests.people import add_person, sign_in
from tests.support import TokenFactory, serving


@pytest.fixture
def admin(auth_headers: TokenFactory) -> dict[str, str]:
    return auth_headers(["admin"], satker="pn-tais", sub="admin-tais")


def _kid(token: str) -> str:
    return str(pyjwt.get_unverified_header(token)["kid"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _jwks_kids(client: httpx.AsyncClient) -> set[str]:
    return {key["kid"] for key in (await client.get("/.well-known/jwks.json")).json()["keys"]}


def _verify_with_pyjwt(token: str, document: dict[str, Any], settings: Settings) -> Any:
    key = next(k for k in pyjwt.PyJWKSet.from_dict(document).keys if k.key_id == _kid(token))
    return pyjwt.decode(
        token, key.key, algorithms=["ES256"], audience=settings.auth.audience,
        issuer=settings.auth.issuer,
    )  # fmt: skip


async def test_rotation_reaches_every_replica_and_old_tokens_verify_until_they_expire(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    migrated: Settings,
    settings_env: dict[str, str],
    engine: AsyncEngine,
) -> None:
    person = await add_person(client, admin)
    before = (await sign_in(client, person["username"])).json()["access_token"]
    old_kid = _kid(before)

    rotated = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli.main", "keys", "rotate"],
        env={**os.environ, **settings_env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rotated.returncode == 0, rotated.stderr
    new_kid = rotated.stdout.split()[2]
    assert f"superseded {old_kid}" in rotated.stdout

    # Another replica, started now, signs with the new key at once ...
    async with serving(migrated) as (_, replica):
        after = (await sign_in(replica, person["username"])).json()["access_token"]
        assert _kid(after) == new_kid
        # ... and this one, whose copy of the keys predates the rotation, accepts its
        # tokens (an unknown kid makes it read the keys again) and keeps the old ones.
        assert (await client.get("/v1/tasks", headers=_bearer(after))).status_code == 200
        assert (await client.get("/v1/tasks", headers=_bearer(before))).status_code == 200
        published = (await replica.get("/.well-known/jwks.json")).json()
        assert {old_kid, new_kid} <= {key["kid"] for key in published["keys"]}
        for token in (before, after):
            claims = _verify_with_pyjwt(token, published, migrated)
            assert claims["sub"] == person["username"]

    # Once the last token the old key could have signed has expired, the next rotation
    # retires it: its private half is wiped and it is no longer published or accepted.
    window = keys.verify_window(migrated.auth)
    async with engine.begin() as connection:
        await connection.execute(
            sa.text("UPDATE signing_key SET superseded_at = :at WHERE kid = :kid"),
            {"at": utcnow() - window - timedelta(seconds=1), "kid": old_kid},
        )
    async with unit_of_work(session_factory(engine)) as session:
        rotation = await keys.rotate(session, migrated.auth, utcnow())
    assert old_kid in rotation.retired
    async with engine.connect() as connection:
        private = (
            await connection.execute(
                sa.text("SELECT private_key FROM signing_key WHERE kid = :kid"), {"kid": old_kid}
            )
        ).scalar_one()
    assert private == ""
    async with serving(migrated) as (_, replica):
        assert old_kid not in await _jwks_kids(replica)
        refused = await replica.get("/v1/tasks", headers=_bearer(before))
        assert refused.status_code == 401
        assert "No ES256 key with kid" in refused.json()["detail"]
        assert (await replica.get("/v1/tasks", headers=_bearer(after))).status_code == 200


class _Flaky:
    """A session factory whose database goes away when told."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sessions = session_factory(engine)
        self.kw = self.sessions.kw
        self.away = False

    def __call__(self, **kw: Any) -> Any:
        if self.away:
            raise OSError("connection refused")
        return self.sessions(**kw)


async def test_the_key_ring_keeps_its_keys_while_the_database_is_away(
    migrated: Settings, engine: AsyncEngine
) -> None:
    async with unit_of_work(session_factory(engine)) as session:
        await keys.ensure_key(session, migrated.auth, utcnow())
    clock = [0.0]
    database = _Flaky(engine)
    ring = keys.KeyRing(database, migrated.auth, clock=lambda: clock[0])  # type: ignore[arg-type]
    await ring.refresh()
    known = {key.kid for key in ring.public_keys()}
    assert known

    database.away = True
    clock[0] += keys.KEY_CACHE_SECONDS + 1
    assert ring.stale()
    await ring.refresh()  # logged, not raised: tokens keep verifying
    assert {key.kid for key in ring.public_keys()} == known
    assert (await ring.signing_key())[0] in known

    database.away = False
    clock[0] += keys.UNKNOWN_KID_INTERVAL_SECONDS
    await ring.refresh()
    assert not ring.stale()


async def test_caches_reload_while_a_request_holds_the_writing_connection(
    migrated: Settings, engine: AsyncEngine
) -> None:
    """A sign-in holds the process's one writing connection on SQLite; the signing keys
    and the acting assignments it reads meanwhile must not wait for that connection
    (they did: 30 s, then the pool's timeout, seen from the console's browser tests)."""
    sessions = session_factory(engine)
    async with unit_of_work(sessions) as session:
        await keys.ensure_key(session, migrated.auth, utcnow())
    ring = keys.KeyRing(sessions, migrated.auth)
    registry = acting.ActingRegistry(sessions)
    async with unit_of_work(sessions):  # the writer, held as a sign-in holds it
        await asyncio.wait_for(ring.refresh(unknown_kid=True), timeout=10)
        assert ring.public_keys()
        assert await asyncio.wait_for(registry.current("budi", "pn-tais", utcnow()), 10) == ()


# --- an identity provider's JWKS URL ----------------------------------------------------

IDP_ISSUER = "https://sso.pn-tais.go.id"


class JwksServer(ThreadingHTTPServer):
    daemon_threads = False
    document: dict[str, Any]
    requests: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/jwks.json"


class _Handler(BaseHTTPRequestHandler):
    server: JwksServer

    def do_GET(self) -> None:
        self.server.requests += 1
        body = json.dumps(self.server.document).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def idp() -> Iterator[JwksServer]:
    server = JwksServer(("127.0.0.1", 0), _Handler)
    server.document, server.requests = {"keys": []}, 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _publish(server: JwksServer, **keys_by_kid: rsa.RSAPrivateKey) -> None:
    entries = []
    for kid, key in keys_by_kid.items():
        entry = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        entries.append({**entry, "kid": kid, "alg": "RS256", "use": "sig"})
    # A provider also publishes keys for other uses: they are left alone.
    entries.append({"kty": "RSA", "use": "enc", "kid": "enc-1", "n": "AQAB", "e": "AQAB"})
    server.document = {"keys": entries}


def _idp_token(key: rsa.RSAPrivateKey, kid: str, **claims: Any) -> str:
    now = datetime.now(UTC)
    payload = {
        "iss": IDP_ISSUER,
        "aud": "alur-sso",
        "sub": "hakim.idp",
        "roles": ["kasubbag_ptip"],
        "satker": "pn-tais",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        **claims,
    }
    return pyjwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


async def test_an_identity_providers_tokens_work_beside_alurs_own(
    idp: JwksServer,
    migrated: Settings,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    second = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _publish(idp, **{"idp-1": first})
    auth = migrated.auth.model_copy(
        update={
            "algorithms": ["HS256", "RS256"],
            "jwks_url": idp.url,
            "idp_issuer": IDP_ISSUER,
            "idp_audience": "alur-sso",
        }
    )
    # The provider may be asked again at once when a token names a kid it lacks.
    monkeypatch.setattr(remote_jwks, "MIN_INTERVAL_SECONDS", 0.0)
    person = await add_person(client, admin)
    async with serving(migrated.model_copy(update={"auth": auth})) as (_, api):
        accepted = await api.get("/v1/tasks", headers=_bearer(_idp_token(first, "idp-1")))
        assert accepted.status_code == 200, accepted.text
        # Alur's own sign-in keeps working in the same deployment.
        own = (await sign_in(api, person["username"])).json()["access_token"]
        assert (await api.get("/v1/tasks", headers=_bearer(own))).status_code == 200

        # The provider's tokens carry its issuer, not Alur's (and the other way round).
        forged = _idp_token(first, "idp-1", iss=migrated.auth.issuer)
        wrong_issuer = await api.get("/v1/tasks", headers=_bearer(forged))
        assert wrong_issuer.status_code == 401
        assert "Wrong issuer" in wrong_issuer.json()["detail"]

        # The provider rotates: a token with the new kid makes Alur fetch the keys again.
        _publish(idp, **{"idp-2": second})
        fetched = idp.requests
        rotated = await api.get("/v1/tasks", headers=_bearer(_idp_token(second, "idp-2")))
        assert rotated.status_code == 200, rotated.text
        assert idp.requests == fetched + 1
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        refused = await api.get("/v1/tasks", headers=_bearer(_idp_token(stranger, "idp-9")))
        assert refused.status_code == 401
