"""`alur people` and `alur keys` as real processes: a court bootstraps its first admin,
who signs in and manages people over the API; `alur audit verify` checks trails that
hold acting officials' actions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.core.settings import PROJECT_ROOT, Settings
from tests.people import PASSWORD, add_person, bearer, sign_in, unique
from tests.support import TokenFactory

Alur = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def alur(settings_env: dict[str, str], migrated: Settings) -> Alur:
    env = {**os.environ, **settings_env}

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.cli.main", *args],
            env=env,
            cwd=PROJECT_ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


async def test_a_court_bootstraps_its_first_admin(alur: Alur, client: httpx.AsyncClient) -> None:
    username = unique("admin")
    added = await asyncio.to_thread(
        alur,
        "people", "add", username, "--name", "Admin PN Tais", "--satker", "pn-tais",
        "--roles", "admin,staf_ti", "--whatsapp", "0812 9999 0000", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert username in added.stdout

    # The admin signs in with that password and manages the court's people.
    admin = await bearer(client, username)
    person = await add_person(client, admin)
    me = (await client.get(f"/v1/people/{username}", headers=admin)).json()
    assert (me["whatsapp"], me["roles"]) == ("+6281299990000", ["admin", "staf_ti"])

    listed = await asyncio.to_thread(alur, "people", "list", "--satker", "pn-tais")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split("\t")[0]: line for line in listed.stdout.splitlines()}
    assert "admin,staf_ti\tactive" in lines[username]
    assert person["username"] in lines

    changed = await asyncio.to_thread(
        alur, "people", "set-password", username, "--password-stdin",
        stdin="sandi-baru-yang-panjang\n",
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert (await sign_in(client, username)).status_code == 400
    assert (await sign_in(client, username, "sandi-baru-yang-panjang")).status_code == 200


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["--nip", "123"], PASSWORD, 2, "18 digits"),
        (["--whatsapp", "nomor"], PASSWORD, 2, "phone number"),
        (["--email", "bukan-email"], PASSWORD, 2, "e-mail"),
        ([], "pendek", 2, "10 to"),
        (["--satker", "pn-nowhere"], PASSWORD, 1, "No satker"),
        (["--roles", "raja"], PASSWORD, 1, "raja"),
    ],
)
def test_people_add_refuses_bad_values(
    alur: Alur, args: list[str], stdin: str, code: int, message: str
) -> None:
    base = {"--name": "X", "--satker": "pn-tais", "--roles": "staf_ti"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    flat = [part for pair in base.items() for part in pair]
    result = alur("people", "add", unique("x"), *flat, "--password-stdin", stdin=stdin + "\n")
    assert result.returncode == code, result.stdout + result.stderr
    assert message in result.stderr


async def test_keys_list_and_audit_verify_with_acting_events(
    alur: Alur, client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    listed = await asyncio.to_thread(alur, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    assert "\tsigning" in listed.stdout

    admin = auth_headers(["admin"], satker="pn-tais", sub="admin-tais")
    plh = await add_person(client, admin, prefix="plh")
    now = datetime.now(UTC)
    assigned = await client.post(
        f"/v1/people/{plh['username']}/acting",
        json={
            "role": "pembuat_artikel",
            "from": now.isoformat(),
            "to": (now + timedelta(hours=1)).isoformat(),
            "reason": "Penulis cuti",
        },
        headers=admin,
    )
    assert assigned.status_code == 201, assigned.text
    token = await bearer(client, plh["username"])
    started = await client.post(
        "/v1/instances", json={"sop": "konten-website", "title": "Berita"}, headers=token
    )
    assert started.status_code == 201, started.text
    instance_id = started.json()["id"]
    events = (await client.get(f"/v1/instances/{instance_id}/events", headers=token)).json()
    assert events["items"][0]["acting_for"]["role"] == "pembuat_artikel"

    verified = await asyncio.to_thread(alur, "audit", "verify", "--instance", instance_id)
    assert verified.returncode == 0, verified.stdout + verified.stderr
