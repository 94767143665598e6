"""A client generated from /openapi.json by openapi-python-client parses what the API
really answers: its successes and its problems (422 with `errors`, 404, 401)."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from fastapi import FastAPI

from tests.support import TokenFactory

# Runs in the embedded pass only: the document and the client do not depend on the database.
pytestmark = pytest.mark.single_pass

LOCK = Path(__file__).with_name("openapi-client.lock")
BASE_URL = "http://alur.test"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PACKAGE = "alur_client"


@pytest.fixture(scope="session")
def openapi_generator() -> Path:
    """openapi-python-client, in a venv of its own beside the suite's (it pins typer below
    Alur's); made once, and again when its lock changes."""
    venv = Path(sys.prefix) / "openapi-python-client"
    binary = venv / "bin" / "openapi-python-client"
    stamp = venv / "lock.sha256"
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if not binary.exists() or not stamp.exists() or stamp.read_text() != digest:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        installed = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(LOCK)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert installed.returncode == 0, installed.stderr
        stamp.write_text(digest)
    return binary


@pytest.fixture
async def generated(
    client: httpx.AsyncClient,
    openapi_generator: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[ModuleType]:
    """The client package generated from the app's document, importable for the test."""
    (tmp_path / "openapi.json").write_bytes((await client.get("/openapi.json")).content)
    # No formatting pass: the client is only imported. Documents (reports, evidence
    # files) are bytes to a client, as the generator's documentation has it.
    binary = ["application/pdf", "application/zip", "text/csv; charset=utf-8", XLSX]
    (tmp_path / "config.yaml").write_text(
        "post_hooks: []\ncontent_type_overrides:\n"
        + "".join(f"  '{kind}': application/octet-stream\n" for kind in binary)
    )
    result = await asyncio.to_thread(
        subprocess.run,
        [
            str(openapi_generator), "generate",
            "--path", str(tmp_path / "openapi.json"),
            "--config", str(tmp_path / "config.yaml"),
            "--meta", "none",
            "--output-path", str(tmp_path / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # A warning means part of the document could not be turned into code.
    assert "Warning" not in output, output
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module(PACKAGE)
    for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
        del sys.modules[name]


def _module(package: ModuleType, name: str) -> ModuleType:
    return importlib.import_module(f"{package.__name__}.{name}")


async def test_a_generated_client_parses_successes_and_problems(
    app: FastAPI, generated: ModuleType, auth_headers: TokenFactory
) -> None:
    list_instances = _module(generated, "api.instances.list_instances")
    start_instance = _module(generated, "api.instances.start_instance")
    get_instance = _module(generated, "api.instances.get_instance")
    models = _module(generated, "models")
    transport = httpx.ASGITransport(app=app)
    headers = auth_headers(["pengguna"])
    client = generated.AuthenticatedClient(base_url=BASE_URL, token="unused")
    client.set_async_httpx_client(
        httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers)
    )
    async with client:
        started = await start_instance.asyncio_detailed(
            client=client, body=models.InstanceCreate(sop="wifi-internet", title="Akun WiFi")
        )
        assert started.status_code == 201
        assert isinstance(started.parsed, models.InstancePublic)
        assert started.parsed.sop == "wifi-internet"

        invalid = await start_instance.asyncio_detailed(
            client=client, body=models.InstanceCreate(sop="wifi-internet", title="")
        )
        assert invalid.status_code == 422
        problem = invalid.parsed
        assert isinstance(problem, models.Problem)
        assert (problem.code, problem.status) == ("validation_error", 422)
        reasons = [(error.location, error.type_) for error in problem.errors]
        assert reasons == [("body.title", "string_too_short")]

        too_many = await list_instances.asyncio_detailed(client=client, limit=0)
        assert too_many.status_code == 422
        assert isinstance(too_many.parsed, models.Problem)
        assert too_many.parsed.errors[0].location == "query.limit"

        missing = await get_instance.asyncio_detailed(client=client, instance_id="no-such-id")
        assert missing.status_code == 404
        assert isinstance(missing.parsed, models.Problem)
        assert missing.parsed.code == "instance_not_found"
        assert missing.parsed.instance == "/v1/instances/no-such-id"

    anonymous = generated.Client(base_url=BASE_URL)
    anonymous.set_async_httpx_client(httpx.AsyncClient(transport=transport, base_url=BASE_URL))
    async with anonymous:
        refused = await list_instances.asyncio_detailed(client=anonymous)
    assert refused.status_code == 401
    assert isinstance(refused.parsed, models.Problem)
    assert refused.parsed.code == "token_missing"
