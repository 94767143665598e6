"""A real `alur` process, as a new user runs it: migrate, serve, answer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.core.settings import PROJECT_ROOT

# Runs in the embedded pass only: `alur dev` is the embedded mode whatever the environment says.
pytestmark = pytest.mark.single_pass

ALUR = [sys.executable, "-m", "services.cli.main"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} not ready within {timeout} s")


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    """A clean embedded-mode environment: nothing but a data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALUR_")}
    env["ALUR_DATA_DIR"] = str(tmp_path / "data")
    return env


def _children(pid: int) -> set[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class DevServer:
    url: str
    process: subprocess.Popen[bytes]


@pytest.fixture
def dev_server(embedded_env: dict[str, str]) -> Iterator[DevServer]:
    port = _free_port()
    process = subprocess.Popen(
        [*ALUR, "dev", "--port", str(port)], env=embedded_env, cwd=PROJECT_ROOT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{base}/readyz", process)
        yield DevServer(base, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_dev_mode_serves_the_catalog(dev_server: DevServer) -> None:
    sops = httpx.get(f"{dev_server.url}/v1/sops", timeout=5).json()["items"]
    assert len(sops) == 12
    bpmn = httpx.get(f"{dev_server.url}/v1/sops/10/diagram", params={"format": "bpmn"}, timeout=5)
    assert bpmn.status_code == 200
    assert b"laneSet" in bpmn.content


def test_dev_mode_stops_its_api_and_worker_on_sigterm(dev_server: DevServer) -> None:
    children = _children(dev_server.process.pid)
    assert len(children) >= 2  # the API and the worker (and the embedded Redis)
    dev_server.process.terminate()
    assert dev_server.process.wait(timeout=30) is not None
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if _alive(pid)], "alur dev left processes behind"


def test_invalid_catalog_refuses_to_start(embedded_env: dict[str, str], tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "roles.yaml").write_text("roles: []\n")
    (catalog / "01-rusak.yaml").write_text("code: rusak\nnumber: satu\n")
    env = {**embedded_env, "ALUR_CATALOG__PATH": str(catalog)}
    subprocess.run([*ALUR, "migrate"], env=env, cwd=PROJECT_ROOT, check=True)
    result = subprocess.run(
        [*ALUR, "serve", "--port", str(_free_port())],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "01-rusak.yaml" in result.stderr
    assert "number" in result.stderr
