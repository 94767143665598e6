"""The console's browser tests: a real `alur dev`, people made as a court makes them, and
Debian's Chromium driven by Playwright (no browser is downloaded)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.core.settings import PROJECT_ROOT

ALUR = [sys.executable, "-m", "services.cli.main"]
PASSWORD = "Rahasia-Alur-2026!"
SATKER = "pn-tais"
# Where screenshots are kept (CI may collect the directory); docs/images holds one of each.
ARTIFACTS = Path(os.environ.get("ALUR_TEST_ARTIFACTS", PROJECT_ROOT / ".alur" / "test-artifacts"))
AXE = PROJECT_ROOT / "tools" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# The people of the court in these tests: username -> (name, roles).
PEOPLE = {
    "andi": ("Andi Pengguna", "pengguna"),
    "budi": ("Budi Santoso, S.Kom.", "staf_ti"),
    "sari": ("Sari Dewi, S.E.", "kasubbag_ptip"),
    "admin": ("Admin PN Tais", "admin,pengguna"),
}


def chromium_path() -> str:
    """Debian's Chromium; `.ci/run` installs it and sets ALUR_REQUIRE_BROWSER, so in CI a
    missing browser fails instead of skipping."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("ALUR_REQUIRE_BROWSER"):
            pytest.fail("Chromium is required (apt-get install chromium) but not installed")
        pytest.skip("Debian's chromium is not installed")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Console:
    url: str
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, username: str) -> str:
        if username not in self.tokens:
            answer = httpx.post(
                f"{self.url}/v1/auth/token",
                data={"username": username, "password": PASSWORD},
                timeout=30,
            )
            answer.raise_for_status()
            self.tokens[username] = answer.json()["access_token"]
        return self.tokens[username]

    def api(self, method: str, path: str, username: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(username)}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"alur dev exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} not ready within {timeout} s")


@contextmanager
def running_console(data_dir: Path) -> Iterator[Console]:
    """`alur dev` on a fresh data directory, with the court's first admin made by the CLI
    and the others by that admin through the API, as a court starts."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ALUR_")}
    env["ALUR_DATA_DIR"] = str(data_dir)
    # The deadline sweep every 2 s, so an escalation shows within the test.
    env["ALUR_WORKER__SWEEP_INTERVAL_SECONDS"] = "2"
    subprocess.run([*ALUR, "migrate"], env=env, cwd=PROJECT_ROOT, check=True, capture_output=True)
    name, roles = PEOPLE["admin"]
    subprocess.run(
        [*ALUR, "people", "add", "admin", "--name", name, "--satker", SATKER, "--roles", roles,
         "--password-stdin"],
        env=env, cwd=PROJECT_ROOT, check=True, capture_output=True,
        input=(PASSWORD + "\n").encode(),
    )  # fmt: skip
    port = free_port()
    log = (data_dir / "dev.log").open("wb")
    process = subprocess.Popen(
        [*ALUR, "dev", "--port", str(port)],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    console = Console(f"http://127.0.0.1:{port}", env)
    try:
        _wait_ready(f"{console.url}/readyz", process)
        for username, (name, roles) in PEOPLE.items():
            if username == "admin":
                continue
            made = console.api(
                "POST",
                "/v1/people",
                "admin",
                json={"username": username, "name": name, "roles": roles.split(","),
                      "password": PASSWORD},
            )  # fmt: skip
            assert made.status_code == 201, made.text
        yield console
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot kept as a test artefact."""
    target = ARTIFACTS / "console" / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    return target


def sign_in(page: Any, console: Console, username: str) -> None:
    page.goto(f"{console.url}/console/#/tasks")
    page.evaluate("window.sessionStorage.clear()")
    page.reload()
    page.get_by_label("Nama pengguna").fill(username)
    page.get_by_label("Kata sandi", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Masuk", exact=True).click()
    page.get_by_role("heading", name="Tugas saya").wait_for()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page as it is now."""
    if not AXE.exists():
        if os.environ.get("ALUR_REQUIRE_BROWSER"):
            pytest.fail(f"axe-core is required but {AXE} is missing (npm ci --prefix tools/axe)")
        pytest.skip("axe-core is not installed (npm ci --prefix tools/axe)")
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {"id": item["id"], "impact": item["impact"], "nodes": [n["target"] for n in item["nodes"]]}
        for item in result["violations"]
        if item["impact"] in {"serious", "critical"}
    ]
