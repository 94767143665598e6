"""The `alur` command line, run as a real process against the test database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.identity.tokens import TokenVerifier
from services.core.settings import PROJECT_ROOT, Settings

ALUR = [sys.executable, "-m", "services.cli.main"]


@pytest.fixture
def alur(settings_env: dict[str, str], migrated: Settings):  # type: ignore[no-untyped-def]
    import os

    env = {**os.environ, **settings_env}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ALUR, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
        )

    return run


def test_token_issue_prints_a_token_the_api_accepts(alur, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    result = alur(
        "token", "issue", "--sub", "budi", "--roles", "staf_ti,kasubbag_ptip",
        "--satker", "pn-tais", "--name", "Budi", "--ttl", "8h",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    principal = TokenVerifier(settings.auth).verify(result.stdout.strip())
    assert principal.sub == "budi"
    assert principal.roles == frozenset({"staf_ti", "kasubbag_ptip"})
    assert (principal.satker, principal.name) == ("pn-tais", "Budi")


def test_satker_add_and_list(alur) -> None:  # type: ignore[no-untyped-def]
    added = alur(
        "satker", "add", "pn-curup", "--name", "Pengadilan Negeri Curup", "--parent", "pt-bengkulu"
    )
    assert added.returncode == 0, added.stderr
    again = alur("satker", "add", "pn-curup", "--name", "x")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    listed = alur("satker", "list").stdout.splitlines()
    assert listed[0].startswith("pt-bengkulu")
    assert any(line.startswith("  pn-curup") for line in listed)


async def test_audit_verify_finds_an_edited_event(
    alur, engine: AsyncEngine, client, auth_headers
) -> None:  # type: ignore[no-untyped-def]
    headers = auth_headers(["pengguna"])
    created = await client.post(
        "/v1/instances", json={"sop": "wifi-internet", "title": "Akun"}, headers=headers
    )
    instance_id = created.json()["id"]
    ok = alur("audit", "verify", "--instance", instance_id)
    assert ok.returncode == 0, ok.stderr
    async with engine.begin() as connection:
        await connection.execute(
            sa.text("UPDATE audit_event SET actor = 'mallory' WHERE instance_id = :id"),
            {"id": instance_id},
        )
    broken = alur("audit", "verify", "--instance", instance_id)
    assert broken.returncode == 1
    assert f"{instance_id}: event #1 (instance.started) was altered" in broken.stderr


def test_catalog_validate_names_file_line_and_field(alur, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert alur("catalog", "validate").returncode == 0
    bad = tmp_path / "catalog"
    bad.mkdir()
    for name in ("roles.yaml", "08-wifi-internet.yaml"):
        (bad / name).write_text((PROJECT_ROOT / "sop_catalog" / name).read_text())
    text = (bad / "08-wifi-internet.yaml").read_text().replace("lane: staf_ti", "lane: staf_it", 1)
    (bad / "08-wifi-internet.yaml").write_text(text)
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if "staf_it" in row)
    result = alur("catalog", "validate", str(bad))
    assert result.returncode == 1
    assert f"08-wifi-internet.yaml:{line}: steps[1].lane:" in result.stderr


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [("json", '"code": "upgrade-sipp"'), ("mermaid", "flowchart"), ("bpmn", "bpmn:laneSet")],
)
def test_catalog_export(alur, fmt: str, marker: str) -> None:  # type: ignore[no-untyped-def]
    result = alur("catalog", "export", "--sop", "09", "--format", fmt)
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout
    if fmt == "json":
        assert len(json.loads(result.stdout)["steps"]) == 10
