"""Website monitors end to end: real local sites go down and up, incidents open the right
SOP, maintenance and retries are respected, certificates and domains are announced."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.catalog.loader import load_catalog
from services.core.db import session_factory, unit_of_work
from services.core.monitors import service as monitors
from services.core.monitors.models import MonitorRecord
from services.core.monitors.rdap import RdapBootstrap
from services.core.monitors.service import MonitorOptions
from services.core.settings import Settings
from services.core.shared import Services
from tests.support import TokenFactory

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


class Site(ThreadingHTTPServer):
    daemon_threads = False
    status = 200
    body = b"<html>Pengadilan Negeri Tais</html>"
    routes: dict[str, tuple[int, str, bytes]]


class Handler(BaseHTTPRequestHandler):
    server: Site

    def do_GET(self) -> None:
        status, kind, body = self.server.routes.get(
            self.path, (self.server.status, "text/html", self.server.body)
        )
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(context: ssl.SSLContext | None = None) -> Generator[tuple[Site, str]]:
    server = Site(("127.0.0.1", 0), Handler)
    server.routes = {}
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if context else "http"
    try:
        yield server, f"{scheme}://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    yield from _serve()


@pytest.fixture
def services(settings: Settings) -> Services:
    catalog = load_catalog(settings.catalog.path)
    return Services(roles={role.id: role for role in catalog.roles})


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def _options(**extra: Any) -> MonitorOptions:
    return MonitorOptions(rdap=RdapBootstrap.load({"id": "http://127.0.0.1:9/rdap/"}), **extra)


async def _create(
    client: httpx.AsyncClient, auth_headers: TokenFactory, satker: str, **fields: Any
) -> str:
    response = await client.post(
        "/v1/monitors",
        json={"name": "Situs", "retries": 1, "confirmations": 2, **fields},
        headers=auth_headers(["admin_website"], satker=satker),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _check(
    engine: AsyncEngine,
    services: Services,
    http: httpx.AsyncClient,
    monitor_id: str,
    at: datetime,
    options: MonitorOptions | None = None,
) -> None:
    async with unit_of_work(session_factory(engine)) as session:
        await monitors.run_check(
            session, services, http, options or _options(),
            monitor_id=monitor_id, scheduled_at=at, now=at,
        )  # fmt: skip


async def _findings(engine: AsyncEngine, satker: str) -> list[tuple[str, str]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT type, subject FROM finding WHERE satker_id = :s ORDER BY id"),
            {"s": satker},
        )
        return [(row.type, row.subject) for row in rows]


async def _instance(
    client: httpx.AsyncClient, auth_headers: TokenFactory, satker: str, instance_id: str
) -> dict[str, Any]:
    response = await client.get(
        f"/v1/instances/{instance_id}", headers=auth_headers(["admin_website"], satker=satker)
    )
    return dict(response.json())


async def test_outage_after_retries_opens_sop05_and_recovery_is_recorded(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    engine: AsyncEngine,
    services: Services,
    http: httpx.AsyncClient,
    site: tuple[Site, str],
) -> None:
    server, url = site
    satker = "pn-bengkulu"
    monitor_id = await _create(client, auth_headers, satker, url=url, keyword="Pengadilan")
    await _check(engine, services, http, monitor_id, NOW - timedelta(minutes=1))
    await _check(engine, services, http, monitor_id, NOW)  # `confirmations`: now up
    server.status = 503
    await _check(engine, services, http, monitor_id, NOW + timedelta(minutes=1))
    monitor = (
        await client.get(
            f"/v1/monitors/{monitor_id}", headers=auth_headers(["admin"], satker=satker)
        )
    ).json()
    assert monitor["state"] == "up"  # one failure is within `retries`
    await _check(engine, services, http, monitor_id, NOW + timedelta(minutes=2))
    monitor = (
        await client.get(
            f"/v1/monitors/{monitor_id}", headers=auth_headers(["admin"], satker=satker)
        )
    ).json()
    assert monitor["state"] == "down"
    incident = await _instance(client, auth_headers, satker, monitor["incident_instance_id"])
    assert incident["sop"] == "pemeliharaan-website"
    assert incident["current_steps"] == ["laporkan_ke_kasubbag"]
    assert incident["context"]["evidence"]["status_code"] == 503

    server.status = 200
    await _check(engine, services, http, monitor_id, NOW + timedelta(minutes=3))
    await _check(engine, services, http, monitor_id, NOW + timedelta(minutes=4))
    events = await client.get(
        f"/v1/instances/{incident['id']}/events", headers=auth_headers(["admin"], satker=satker)
    )
    comments = [e for e in events.json()["items"] if e["type"] == "comment.added"]
    assert len(comments) == 1
    assert url in comments[0]["data"]["text"]
    # (Only this monitor's: the satker may have findings of other tests, a backup check.)
    findings = [
        t for t, subject in await _findings(engine, satker) if subject == f"monitor:{monitor_id}"
    ]
    assert findings == ["monitor.down", "monitor.up"]

    checks = await client.get(
        f"/v1/monitors/{monitor_id}/checks", headers=auth_headers(["admin"], satker=satker)
    )
    items = checks.json()["items"]
    assert [c["up"] for c in items] == [True, True, False, False, True, True]
    assert all(c["latency_ms"] is not None for c in items)


async def test_maintenance_window_suppresses_the_outage(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    engine: AsyncEngine,
    services: Services,
    http: httpx.AsyncClient,
    site: tuple[Site, str],
) -> None:
    server, url = site
    satker = "pn-manna"
    monitor_id = await _create(client, auth_headers, satker, url=url, retries=0)
    window = await client.post(
        f"/v1/monitors/{monitor_id}/maintenance-windows",
        json={
            "kind": "one_off",
            "starts_at": NOW.isoformat(),
            "ends_at": (NOW + timedelta(hours=1)).isoformat(),
            "reason": "Migrasi hosting",
        },
        headers=auth_headers(["admin"], satker=satker),
    )
    assert window.status_code == 201, window.text
    server.status = 500
    for minute in range(3):
        await _check(engine, services, http, monitor_id, NOW + timedelta(minutes=minute))
    subject = f"monitor:{monitor_id}"
    assert [t for t, s in await _findings(engine, satker) if s == subject] == []
    await _check(engine, services, http, monitor_id, NOW + timedelta(hours=2))
    assert [t for t, s in await _findings(engine, satker) if s == subject] == ["monitor.down"]


async def test_everything_down_with_the_reference_is_a_network_incident(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    engine: AsyncEngine,
    services: Services,
    http: httpx.AsyncClient,
) -> None:
    # A court of its own: every monitor of the satker takes part in the verdict.
    satker = "pn-kepahiang"
    created = await client.post(
        "/v1/satkers",
        json={"id": satker, "name": "Pengadilan Negeri Kepahiang", "parent": "pt-bengkulu"},
        headers=auth_headers(["admin"], satker="pt-bengkulu"),
    )
    assert created.status_code == 201, created.text
    sites = [_serve() for _ in range(3)]
    servers = [next(generator) for generator in sites]
    try:
        ids = [
            await _create(client, auth_headers, satker, url=url, retries=0, is_reference=(n == 2))
            for n, (_, url) in enumerate(servers)
        ]
        for server, _ in servers:
            server.status = 502
        for monitor_id in ids:
            await _check(engine, services, http, monitor_id, NOW)
    finally:
        for generator in sites:
            generator.close()
    async with engine.connect() as connection:
        opened = (
            await connection.execute(
                sa.text("SELECT sop_code FROM instance WHERE satker_id = :s ORDER BY started_at"),
                {"s": satker},
            )
        ).scalars()
        sops = list(opened)
    # Each site alone looked like a website problem (SOP 05); once the reference failed
    # too, it is the court's connection: one SOP 07 instance.
    assert sorted(sops) == ["gangguan-jaringan", "pemeliharaan-website", "pemeliharaan-website"]


def _certificate(days_left: int, directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days_left))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_certificate_expiry_is_announced_once_per_threshold(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    engine: AsyncEngine,
    services: Services,
    tmp_path: Path,
) -> None:
    server_context, client_context = _certificate(10, tmp_path)
    satker = "pn-tais"
    generator = _serve(server_context)
    _, url = next(generator)
    try:
        monitor_id = await _create(client, auth_headers, satker, url=url, check_domain=False)
        options = _options(ca_file=str(tmp_path / "cert.pem"))
        async with httpx.AsyncClient(verify=client_context) as https:
            now = datetime.now(UTC)
            await _check(engine, services, https, monitor_id, now, options)
            await _check(engine, services, https, monitor_id, now + timedelta(hours=7), options)
    finally:
        generator.close()
    found = [t for t, s in await _findings(engine, satker) if s == f"monitor:{monitor_id}"]
    assert found == ["certificate.expiring"]
    monitor = (
        await client.get(f"/v1/monitors/{monitor_id}", headers=auth_headers(["admin"]))
    ).json()
    assert monitor["state"] == "up"  # two good checks: `confirmations` met
    assert monitor["certificate_expires_at"] is not None


async def test_domain_expiry_through_rdap_for_go_id(
    engine: AsyncEngine, http: httpx.AsyncClient, site: tuple[Site, str]
) -> None:
    server, url = site
    expires = NOW + timedelta(days=10)
    server.routes["/rdap/domain/pn-tais.go.id"] = (
        200,
        "application/rdap+json",
        json.dumps(
            {"objectClassName": "domain", "ldhName": "pn-tais.go.id",
             "events": [{"eventAction": "expiration", "eventDate": expires.isoformat()}]}
        ).encode(),
    )  # fmt: skip
    monitor = MonitorRecord(
        id="domain-test", satker_id="pn-tais", name="x", url="https://www.pn-tais.go.id/",
        created_at=NOW,
    )  # fmt: skip
    options = MonitorOptions(rdap=RdapBootstrap.load({"id": f"{url}rdap/"}))
    async with unit_of_work(session_factory(engine)) as session:
        session.add(monitor)
        await session.flush()
        await monitors.check_domain(session, http, monitor, options, NOW)
        assert monitor.domain_expires_at == expires
        assert monitor.domain_alerted_days == 14
        await monitors.check_domain(session, http, monitor, options, NOW + timedelta(days=2))
        await session.rollback()


async def test_scheduling_claims_each_slot_once(
    client: httpx.AsyncClient, auth_headers: TokenFactory, engine: AsyncEngine
) -> None:
    monitor_id = await _create(
        client, auth_headers, "pn-tais", url="http://127.0.0.1:9/", interval_seconds=60
    )
    later = datetime.now(UTC) + timedelta(seconds=1)
    async with unit_of_work(session_factory(engine)) as session:
        first = dict(await monitors.due_monitors(session, later))
    async with unit_of_work(session_factory(engine)) as session:
        second = dict(await monitors.due_monitors(session, later))
    assert monitor_id in first
    assert monitor_id not in second


async def test_a_real_worker_runs_due_checks(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    engine: AsyncEngine,
    settings: Settings,
    site: tuple[Site, str],
) -> None:
    from arq.connections import RedisSettings, create_pool
    from arq.worker import Worker

    from services.core.work import QUEUE_NAME
    from services.worker.settings import ArqSettings
    from services.worker.tasks import schedule_monitors

    _, url = site
    monitor_id = await _create(client, auth_headers, "pn-tais", url=url, check_domain=False)
    assert settings.redis.url is not None
    pool = await create_pool(
        RedisSettings.from_dsn(settings.redis.url), default_queue_name=QUEUE_NAME
    )
    try:
        worker = Worker(
            functions=ArqSettings.functions,
            redis_pool=pool,
            queue_name=QUEUE_NAME,
            burst=True,
            poll_delay=0.05,
            handle_signals=False,
        )
        worker.ctx["redis"] = pool
        await ArqSettings.on_startup(worker.ctx)
        assert await schedule_monitors(worker.ctx) >= 1
        await worker.main()
        await ArqSettings.on_shutdown(worker.ctx)
    finally:
        await pool.aclose()
    checks = await client.get(
        f"/v1/monitors/{monitor_id}/checks", headers=auth_headers(["admin"], satker="pn-tais")
    )
    (check,) = checks.json()["items"]
    assert check["up"] is True
    lag = datetime.fromisoformat(check["checked_at"]) - datetime.fromisoformat(
        check["scheduled_at"]
    )
    assert lag >= timedelta(0)


async def test_renewal_reminds_once_through_sop05_step4(
    client: httpx.AsyncClient, auth_headers: TokenFactory, engine: AsyncEngine, services: Services
) -> None:
    from services.core.monitors import renewals

    admin = auth_headers(["admin"], satker="pn-manna")
    created = await client.post(
        "/v1/renewals",
        json={"service": "domain", "name": "pn-manna.go.id", "provider": "PANDI",
              "due_date": "2026-12-10", "remind_days_before": 30},
        headers=admin,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    early = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    async with unit_of_work(session_factory(engine)) as session:
        assert await renewals.remind_due(session, services, early) == []
    for _ in range(2):
        async with unit_of_work(session_factory(engine)) as session:
            await renewals.remind_due(session, services, NOW)
    listed = (await client.get("/v1/renewals", headers=admin)).json()["items"]
    (renewal,) = [r for r in listed if r["id"] == created.json()["id"]]
    instance = await _instance(client, auth_headers, "pn-manna", renewal["reminder_instance_id"])
    assert instance["current_steps"] == ["perbarui_layanan_hosting"]
    assert [t for t, _ in await _findings(engine, "pn-manna")].count("renewal.due") == 1
