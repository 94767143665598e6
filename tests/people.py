"""People in tests: adding them over the API, signing them in, TOTP codes made without
pyotp (RFC 6238 written out, so Alur's TOTP check is tested against another
implementation than its own)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import struct
import uuid
from datetime import datetime
from typing import Any

import httpx

PASSWORD = "kopi-tubruk-pagi-hari"


def unique(prefix: str) -> str:
    """A username no other test uses (the suite shares one database)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def random_nip() -> str:
    """A valid NIP no other test is likely to use."""
    born = f"{random.randint(1965, 1999)}{random.randint(1, 12):02d}{random.randint(1, 28):02d}"
    appointed = f"{random.randint(2000, 2024)}{random.randint(1, 12):02d}"
    return f"{born}{appointed}{random.choice('12')}{random.randint(1, 999):03d}"


async def add_person(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    *,
    prefix: str = "pegawai",
    roles: tuple[str, ...] = ("staf_ti",),
    password: str | None = PASSWORD,
    **fields: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "username": unique(prefix),
        "name": f"Pegawai {prefix}",
        "roles": list(roles),
        **fields,
    }
    if password is not None:
        body["password"] = password
    response = await client.post("/v1/people", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    return await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password, **extra},
    )


async def bearer(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> dict[str, str]:
    response = await sign_in(client, username, password)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def rfc6238(secret_base32: str, at: datetime, *, step: int = 30, digits: int = 6) -> str:
    """The TOTP code of `secret_base32` at `at` (HMAC-SHA1, RFC 6238 / RFC 4226)."""
    key = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    counter = int(at.timestamp()) // step
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


CONTENT = "konten-website"  # SOP 06: author -> admin_website decision -> kasubbag_ptip -> ...
KASUBBAG_STEP = "sampaikan_konsep"


async def at_kasubbag_step(
    client: httpx.AsyncClient,
    auth_headers: Any,
    *,
    satker: str = "pn-tais",
    title: str = "Berita",
) -> str:
    """A SOP 06 instance in `satker` whose open task is the Kasubbag's."""
    author = auth_headers(["pembuat_artikel"], satker=satker)
    website = auth_headers(["admin_website"], satker=satker)
    started = await client.post(
        "/v1/instances", json={"sop": CONTENT, "title": title}, headers=author
    )
    assert started.status_code == 201, started.text
    instance_id = str(started.json()["id"])
    for step, headers, outcome in (
        ("siapkan_sumber_data", author, None),
        ("buat_konsep", author, None),
        ("periksa_konsep", website, "valid"),
    ):
        done = await client.post(
            f"/v1/instances/{instance_id}/transitions",
            json={"step": step, "outcome": outcome},
            headers=headers,
        )
        assert done.status_code == 200, done.text
    assert done.json()["current_steps"] == [KASUBBAG_STEP]
    return instance_id
