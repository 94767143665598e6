"""The `alur` command line, run as a real process against the test database."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from jose import jwt
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.identity.tokens import TokenVerifier
from services.core.settings import PROJECT_ROOT, Settings
from tests.support import TokenFactory

ALUR = [sys.executable, "-m", "services.cli.main"]
Alur = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def alur(settings_env: dict[str, str], migrated: Settings) -> Alur:
    env = {**os.environ, **settings_env}

    def run(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ALUR, *args],
            env={**env, **environ},
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
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
    claims = jwt.get_unverified_claims(result.stdout.strip())
    assert claims["exp"] - claims["iat"] == 8 * 3600


@pytest.mark.parametrize(
    ("roles", "satker", "message"),
    [
        ("staf_ti,penyihir", "pn-tais", "error: no role penyihir in "),
        ("staf_ti", "pn-atlantis", "error: no satker 'pn-atlantis' in the database"),
    ],
)
def test_token_issue_refuses_unknown_roles_and_satkers(  # type: ignore[no-untyped-def]
    alur, roles: str, satker: str, message: str
) -> None:
    result = alur("token", "issue", "--sub", "budi", "--roles", roles, "--satker", satker)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.splitlines()) == 1


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_version(alur) -> None:  # type: ignore[no-untyped-def]
    result = alur("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"alur {version('alur')}\n"


def test_a_bad_timezone_is_refused_in_a_few_lines(alur) -> None:  # type: ignore[no-untyped-def]
    result = alur("satker", "add", "pn-mars", "--name", "Mars", "--timezone", "Mars/Base")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) < 8, result.stderr
    text = " ".join(result.stderr.replace("│", " ").split())
    assert "'Mars/Base' is not an IANA time zone" in text
    assert "pn-mars" not in alur("satker", "list").stdout


def test_an_unknown_migration_is_one_line(alur) -> None:  # type: ignore[no-untyped-def]
    result = alur("migrate", "nosuch")
    assert result.returncode == 2
    assert _one_line(result) == "error: migration: Can't locate revision identified by 'nosuch'"


def test_an_unreachable_database_is_one_line_without_its_password(alur) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql+asyncpg://alur:hunter2-secret@127.0.0.1:{port}/alur"
    result = alur("satker", "list", ALUR_DATABASE__URL=url)
    assert result.returncode == 1
    line = _one_line(result)
    assert line.startswith("error: cannot connect: "), line
    assert "hunter2" not in result.stdout + result.stderr


def test_invalid_settings_are_one_line_without_the_value(alur) -> None:  # type: ignore[no-untyped-def]
    result = alur("satker", "list", ALUR_ENV="production", ALUR_AUTH__JWT_SECRET="short-s3cret")
    assert result.returncode == 2
    line = _one_line(result)
    assert line.startswith("error: Settings not valid: ALUR_AUTH__JWT_SECRET must be set"), line
    assert "short-s3cret" not in result.stderr


# A command that fails as no command should, with a secret in a local variable.
_FAILING = """
import sys
from services.cli import main

@main.app.command("explode")
def explode() -> None:
    token = "local-s3cret"
    raise RuntimeError("the gearbox broke")

sys.argv[0] = "alur"
main.main()
"""


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_error_is_short_and_never_shows_locals(
    settings_env: dict[str, str], debug: bool
) -> None:
    args = ["--debug", "explode"] if debug else ["explode"]
    result = subprocess.run(
        [sys.executable, "-c", _FAILING, *args],
        env={**os.environ, **settings_env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "local-s3cret" not in result.stderr
    last = result.stderr.splitlines()[-1]
    if debug:
        assert result.stderr.startswith("Traceback (most recent call last):")
        assert ", in explode\n" in result.stderr
        assert last == "error: unexpected RuntimeError: the gearbox broke"
    else:
        assert _one_line(result) == (
            "error: unexpected RuntimeError: the gearbox broke "
            "(`alur --debug …` or ALUR_LOG__LEVEL=DEBUG shows its traceback)"
        )


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
    alur: Alur, engine: AsyncEngine, client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    # Begun on paper two days ago, at 08:00 WIB: the time comes with its +07:00 offset.
    wib = timezone(timedelta(hours=7))
    started_at = (datetime.now(wib) - timedelta(days=2)).replace(hour=8, minute=0)
    created = await client.post(
        "/v1/instances",
        json={"sop": "wifi-internet", "title": "Akun", "started_at": started_at.isoformat()},
        headers=auth_headers(["pengguna", "admin"]),
    )
    assert created.status_code == 201, created.text
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


def test_catalog_new_writes_a_skeleton_that_validates(alur: Alur, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(PROJECT_ROOT / "sop_catalog", catalog)
    made = alur(
        "catalog", "new", "--code", "tinjauan-sop", "--number", "13",
        "--title", "Tinjauan SOP: tahunan", "--lanes", "staf_ti,kasubbag_ptip",
        "--path", str(catalog),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout.count("TODO") >= 10
    (catalog / "13-tinjauan-sop.yaml").write_text(made.stdout)
    checked = alur("catalog", "validate", str(catalog))
    assert checked.returncode == 0, checked.stderr
    shown = alur("catalog", "export", "--sop", "13", "--format", "json", "--path", str(catalog))
    exported = json.loads(shown.stdout)
    assert [step["lane"] for step in exported["steps"]] == ["staf_ti", "kasubbag_ptip"]
    assert exported["title"] == "Tinjauan SOP: tahunan"

    refused = alur(
        "catalog", "new", "--code", "wifi-internet", "--number", "8", "--title", "x",
        "--lanes", "staf_ti,hakim_agung", "--path", str(catalog),
    )  # fmt: skip
    assert refused.returncode == 2
    for problem in ("code 'wifi-internet' is taken", "number 8 is taken",
                    "lane 'hakim_agung' is no role"):  # fmt: skip
        assert problem in refused.stderr


def test_catalog_import_bpmn_writes_todos_that_validate_names(alur: Alur, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(PROJECT_ROOT / "sop_catalog", catalog)
    target = catalog / "13-pengaduan-jaringan.yaml"
    sample = PROJECT_ROOT / "tests" / "data" / "pengaduan-jaringan.bpmn"
    made = alur(
        "catalog", "import", "--bpmn", str(sample), "--out", str(target),
        "--code", "pengaduan-jaringan", "--number", "13", "--path", str(catalog),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"wrote {target}: 5 steps, 25 TODOs" in made.stderr
    checked = alur("catalog", "validate", str(catalog))
    assert checked.returncode == 1
    text = target.read_text().splitlines()
    line = next(n for n, row in enumerate(text, start=1) if row.startswith("warning: TODO"))
    assert f"13-pengaduan-jaringan.yaml:{line}: warning: TODO: fill in" in checked.stderr
    assert "25 problem(s)" in checked.stderr

    again = alur("catalog", "import", "--bpmn", str(sample), "--out", str(target))
    assert again.returncode == 2
    assert "exists" in again.stderr
    broken = tmp_path / "paralel.bpmn"
    broken.write_text(
        sample.read_text()
        .replace(
            'bpmn:exclusiveGateway id="Gateway_0putus"', 'bpmn:parallelGateway id="Gateway_0putus"'
        )
        .replace(
            "</bpmn:exclusiveGateway>\n    <bpmn:receiveTask",
            "</bpmn:parallelGateway>\n    <bpmn:receiveTask",
        )
    )
    refused = alur("catalog", "import", "--bpmn", str(broken))
    assert refused.returncode == 2
    assert f"error: {broken}: the process has a parallel gateway" in refused.stderr
    assert refused.stdout == ""
