"""No secret in any log line: `alur dev` run through requests that fail on purpose, in the
console and the JSON format, at DEBUG level with every SQL statement logged, and its whole
output searched for every token, secret and password that was in play."""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from pydantic import SecretStr

from services.core.identity.tokens import issue_token
from services.core.settings import PROJECT_ROOT, AuthSettings
from services.core.webhooks_out import signing
from tests.e2e.test_serve import ALUR, _free_port, _wait_ready


@dataclass
class Run:
    url: str
    process: subprocess.Popen[bytes]
    database: Path
    output: Path
    auth: AuthSettings
    # Every string that must not reach the log.
    secrets: list[str] = field(default_factory=list)

    def stop(self) -> str:
        """Stop `alur dev` (and so its API and worker): everything they logged."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        return self.output.read_text(errors="replace")

    def token(self, roles: list[str], **changes: object) -> str:
        fields: dict[str, object] = {
            "sub": "budi@pn-tais",
            "roles": roles,
            "satker": "pn-tais",
            "ttl": timedelta(hours=1),
            "now": datetime.now(UTC),
            **changes,
        }
        token = issue_token(self.auth, **fields)  # type: ignore[arg-type]
        self.secrets.append(token)
        return token

    def break_table(self, table: str) -> None:
        """The database fails under the running server: the next request on `table` is
        answered 500 and its traceback logged."""
        with sqlite3.connect(self.database, timeout=30) as connection:
            connection.execute(f"ALTER TABLE {table} RENAME TO {table}_gone")


@pytest.fixture(params=[False, True], ids=["console", "json"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Run]:
    jwt_secret = f"jwt-secret-{secrets.token_hex(16)}"
    metrics_token = f"metrics-token-{secrets.token_hex(16)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALUR_")}
    env.update(
        {
            "ALUR_DATA_DIR": str(tmp_path / "data"),
            "ALUR_LOG__JSON_FORMAT": str(request.param).lower(),
            "ALUR_LOG__LEVEL": "DEBUG",
            "ALUR_DATABASE__ECHO": "true",
            "ALUR_AUTH__JWT_SECRET": jwt_secret,
            "ALUR_METRICS__TOKEN": metrics_token,
            # The webhook receiver below listens on loopback.
            "ALUR_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true",
            "ALUR_WORKER__SWEEP_INTERVAL_SECONDS": "1",
        }
    )
    port = _free_port()
    output = tmp_path / "alur-dev.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [*ALUR, "dev", "--port", str(port)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        yield Run(
            url=f"http://127.0.0.1:{port}",
            process=process,
            database=tmp_path / "data" / "alur.db",
            output=output,
            auth=AuthSettings(jwt_secret=SecretStr(jwt_secret)),
            secrets=[jwt_secret, metrics_token],
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def _exercise(run: Run) -> None:
    admin = {"authorization": f"Bearer {run.token(['admin', 'staf_ti', 'kasubbag_ptip'])}"}
    with httpx.Client(base_url=run.url, timeout=30) as http:
        # Bad credentials of every kind.
        garbage = f"not-a-jwt-{secrets.token_hex(16)}"
        forged = issue_token(
            AuthSettings(jwt_secret=SecretStr(f"another-secret-{secrets.token_hex(16)}")),
            sub="mallory",
            roles=["admin"],
            satker="pn-tais",
            ttl=timedelta(hours=1),
            now=datetime.now(UTC),
        )
        expired = run.token(["admin"], now=datetime.now(UTC) - timedelta(hours=2))
        run.secrets += [garbage, forged]
        for credential in (garbage, forged, expired):
            answer = http.get("/v1/instances", headers={"authorization": f"Bearer {credential}"})
            assert answer.status_code == 401, answer.text
        assert http.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
        metrics = {"authorization": f"Bearer {run.secrets[1]}"}
        assert http.get("/metrics", headers=metrics).status_code == 200

        # A webhook subscription (its secret rotated) delivering to a closed port.
        subscription = http.post(
            "/v1/webhook-subscriptions",
            json={"url": f"http://127.0.0.1:{_free_port()}/hook", "event_types": ["*"]},
            headers=admin,
        )
        assert subscription.status_code == 201, subscription.text
        run.secrets.append(subscription.json()["secret"])
        rotated = http.post(
            f"/v1/webhook-subscriptions/{subscription.json()['id']}/rotate-secret",
            json={"overlap_seconds": 3600},
            headers=admin,
        )
        assert rotated.status_code == 200, rotated.text
        run.secrets.append(rotated.json()["secret"])
        started = http.post(
            "/v1/instances", json={"sop": "konten-website", "title": "Log test"}, headers=admin
        )
        assert started.status_code == 201, started.text

        # An inbound source: one message forged, one signed.
        source = http.post(
            "/v1/hook-sources",
            json={"name": "pt-bengkulu", "kind": "correlation", "satkers": ["pn-tais"]},
            headers=admin,
        )
        assert source.status_code == 201, source.text
        hook_secret = source.json()["secret"]
        run.secrets.append(hook_secret)
        body = orjson.dumps({"correlation_key": str(uuid.uuid4()), "step": "kirim_ke_ma"})
        signed = signing.headers([hook_secret], f"msg_{uuid.uuid4().hex}", int(time.time()), body)
        forged_headers = {**signed, "webhook-signature": "v1,AAAA"}
        assert http.post("/v1/hooks/pt-bengkulu", content=body, headers=forged_headers).is_error
        assert http.post("/v1/hooks/pt-bengkulu", content=body, headers=signed).status_code == 202

        # A password in a stored configuration (written with SQL echo on).
        password = f"sipp-password-{secrets.token_hex(8)}"
        run.secrets.append(password)
        config = http.put(
            "/v1/satkers/pn-tais/sipp-config",
            json={
                "satker_code": "TAIS",
                "backup_dir": "/nonexistent",
                "database": {
                    "url": f"mysql://sipp:{password}@127.0.0.1:3306/sipp",
                    "internal_table": "perkara",
                    "internal_column": "diinput_tanggal",
                    "synced_table": "perkara_sync",
                    "synced_column": "tanggal",
                },
            },
            headers=admin,
        )
        assert config.status_code == 200, config.text

        # Wait for a delivery attempt: the worker signed with the secrets, and failed.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            deliveries = http.get("/v1/webhook-deliveries", headers=admin).json()["items"]
            if any(delivery["attempts"] for delivery in deliveries):
                break
            time.sleep(0.5)
        else:
            pytest.fail("no webhook delivery was attempted")

        # Failures on purpose, each while a bearer token (and for the last two a freshly
        # made secret) is held by the frames the exception passes through. uvicorn closes
        # the connection after an unhandled error: one connection each.
        failures = [
            ("task", "GET", "/v1/tasks", None),
            ("webhook_subscription", "POST", "/v1/webhook-subscriptions", {
                "url": "http://127.0.0.1:9/other", "event_types": ["*"]
            }),
            ("hook_source", "POST", "/v1/hook-sources", {
                "name": "another", "kind": "correlation", "satkers": ["pn-tais"]
            }),
        ]  # fmt: skip
        for table, method, path, payload in failures:
            run.break_table(table)
            failed = httpx.request(method, run.url + path, json=payload, headers=admin, timeout=30)
            assert failed.status_code == 500, failed.text
        # The worker's jobs fail too now (the deadline sweep reads tasks every second).
        time.sleep(3)


def test_no_secret_in_any_log_line(run: Run) -> None:
    _exercise(run)
    text = run.stop()

    # What must be there: the failures, logged with their tracebacks, and the refusals.
    assert "Traceback (most recent call last)" in text
    for table in ("task", "webhook_subscription", "hook_source"):
        assert f"no such table: {table}" in text
    assert "status=401" in text or '"status":401' in text
    # What must not: any secret in play, whole or in part, or a dump of local variables.
    leaked = [secret for secret in run.secrets if secret in text]
    assert not leaked, f"{len(leaked)} of {len(run.secrets)} secrets in the log"
    for part in ("eyJ", "whsec_", "sipp-password-", "jwt-secret-", "metrics-token-"):
        assert part not in text, f"{part!r} in the log"
    assert "locals ─" not in text
    assert "╭" not in text  # no rich panels at all
    # Nor did the last guard have to mask anything: no source let a secret through.
    assert "[redacted]" not in text
