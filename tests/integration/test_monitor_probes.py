"""SOP 05's probes against real servers on loopback: HTTP, HTTPS with generated
certificates, and an RDAP registry."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.core.monitors.probe import HttpResult, MonitorSpec, ProbeReason, check_http
from services.core.monitors.probe import content_stale as stale
from services.core.monitors.rdap import (
    DomainNotFound,
    RdapBootstrap,
    RdapMalformed,
    UnknownTld,
    domain_expiry,
)
from services.core.monitors.tls import (
    CertificateCheckError,
    certificate_expiry,
    certificate_status,
    expiry_alerts,
)

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
KEYWORD = "Pengadilan Negeri Tais"
DOMAIN_EXPIRES = datetime(2027, 3, 1, 4, 30, tzinfo=UTC)


def rss(*ages_in_days: int) -> bytes:
    items = "".join(
        f"<item><title>Berita {n}</title><pubDate>"
        f"{format_datetime(NOW - timedelta(days=age), usegmt=True)}</pubDate></item>"
        for n, age in enumerate(ages_in_days)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()


def atom(*ages_in_days: int) -> bytes:
    entries = "".join(
        f"<entry><title>Pengumuman {n}</title>"
        f"<updated>{(NOW - timedelta(days=age)).isoformat()}</updated></entry>"
        for n, age in enumerate(ages_in_days)
    )
    return f'<feed xmlns="http://www.w3.org/2005/Atom">{entries}</feed>'.encode()


def rdap_domain(name: str, *events: tuple[str, str]) -> bytes:
    return json.dumps(
        {
            "objectClassName": "domain",
            "ldhName": name,
            "events": [{"eventAction": action, "eventDate": date} for action, date in events],
        }
    ).encode()


PAGE = f"<html><body><h1>{KEYWORD}</h1><p>Jadwal sidang</p></body></html>".encode()
# path -> (status, headers, body)
ROUTES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/": (200, {"Content-Type": "text/html; charset=utf-8"}, PAGE),
    "/moved": (302, {"Location": "/"}, b""),
    "/error": (503, {"Content-Type": "text/html"}, b"<html>Service Unavailable</html>"),
    "/rss": (200, {"Content-Type": "application/rss+xml"}, rss(200, 365, 250)),
    "/atom": (200, {"Content-Type": "application/atom+xml"}, atom(30, 2, 90)),
    "/static": (
        200,
        {
            "Content-Type": "text/html",
            "Last-Modified": format_datetime(NOW - timedelta(days=10), usegmt=True),
        },
        PAGE,
    ),
    "/rdap/domain/pn-tais.go.id": (
        200,
        {"Content-Type": "application/rdap+json"},
        rdap_domain(
            "pn-tais.go.id",
            ("registration", "2012-03-01T04:30:00Z"),
            ("expiration", "2027-03-01T11:30:00+07:00"),
        ),
    ),
    "/rdap/domain/noexpiry.go.id": (
        200,
        {"Content-Type": "application/rdap+json"},
        rdap_domain("noexpiry.go.id", ("registration", "2012-03-01T04:30:00Z")),
    ),
    "/rdap/domain/broken.go.id": (200, {"Content-Type": "text/html"}, b"<html>maintenance"),
}


class Server(ThreadingHTTPServer):
    # Handler threads are joined on close, so no socket outlives its test.
    daemon_threads = False
    release = threading.Event()
    requested: list[str]


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        self.server.requested.append(self.path)
        if self.path == "/slow":
            self.server.release.wait(timeout=5)
            status, headers, body = ROUTES["/"]
        else:
            status, headers, body = ROUTES.get(self.path, (404, {}, b"not found"))
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the slow route's client gave up, as the test wants

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Running:
    url: str
    port: int
    requested: list[str]


def serve(context: ssl.SSLContext | None = None) -> Iterator[Running]:
    server = Server(("127.0.0.1", 0), Handler)
    server.release = threading.Event()
    server.requested = []
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    scheme = "https" if context else "http"
    try:
        yield Running(url=f"{scheme}://127.0.0.1:{port}", port=port, requested=server.requested)
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def site() -> Iterator[Running]:
    yield from serve()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def check(client: httpx.AsyncClient, url: str, **spec: object) -> HttpResult:
    return await check_http(client, MonitorSpec(url=url, **spec), NOW)  # type: ignore[arg-type]


# -- HTTP -------------------------------------------------------------------------------


async def test_up_with_keyword(site: Running, client: httpx.AsyncClient) -> None:
    result = await check(client, f"{site.url}/moved", keyword=KEYWORD)
    assert result.up, result
    assert (result.status_code, result.reason, result.error) == (200, None, None)
    assert (result.latency_ms or 0) > 0
    assert result.checked_at == NOW


async def test_wrong_status(site: Running, client: httpx.AsyncClient) -> None:
    result = await check(client, f"{site.url}/error")
    assert not result.up
    assert (result.status_code, result.reason) == (503, ProbeReason.STATUS_MISMATCH)
    assert result.error == "HTTP 503, expected 200"
    assert (await check(client, f"{site.url}/error", expected_status=503)).up


async def test_keyword_missing_and_absent_mode(site: Running, client: httpx.AsyncClient) -> None:
    missing = await check(client, site.url, keyword="Website sedang dalam perbaikan")
    assert (missing.up, missing.reason) == (False, ProbeReason.KEYWORD_MISSING)
    # "absent" watches for a text that must not appear (a defacement, an error banner).
    assert (await check(client, site.url, keyword="Fatal error", keyword_mode="absent")).up
    present = await check(client, site.url, keyword=KEYWORD, keyword_mode="absent")
    assert (present.up, present.reason) == (False, ProbeReason.KEYWORD_PRESENT)


async def test_timeout(site: Running, client: httpx.AsyncClient) -> None:
    result = await check(client, f"{site.url}/slow", timeout_seconds=0.3)
    assert (result.up, result.reason, result.status_code) == (False, ProbeReason.TIMEOUT, None)
    assert result.error == "no answer within 0.3 s"


async def test_connection_refused(client: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await check(client, f"http://127.0.0.1:{port}/", timeout_seconds=2)
    assert (result.up, result.reason) == (False, ProbeReason.CONNECTION_ERROR)
    assert "ConnectError" in (result.error or "")


# -- content freshness ------------------------------------------------------------------


async def test_stale_rss_feed(site: Running, client: httpx.AsyncClient) -> None:
    spec = MonitorSpec(url=f"{site.url}/rss", freshness_days=180)
    result = await check_http(client, spec, NOW)
    assert result.up
    assert (result.content_updated_at, result.content_source) == (NOW - timedelta(200), "feed")
    assert stale(result, spec, NOW)


async def test_fresh_atom_feed_beside_the_page(site: Running, client: httpx.AsyncClient) -> None:
    spec = MonitorSpec(url=site.url, keyword=KEYWORD, feed_url=f"{site.url}/atom", freshness_days=7)
    result = await check_http(client, spec, NOW)
    assert result.up
    assert (result.content_updated_at, result.content_source) == (NOW - timedelta(2), "feed")
    assert not stale(result, spec, NOW)


async def test_last_modified_fallback(site: Running, client: httpx.AsyncClient) -> None:
    spec = MonitorSpec(url=f"{site.url}/static", freshness_days=7, feed_url=f"{site.url}/gone")
    result = await check_http(client, spec, NOW)
    assert result.up
    assert result.last_modified == NOW - timedelta(days=10)
    assert (result.content_updated_at, result.content_source) == (
        result.last_modified,
        "last_modified",
    )
    assert result.content_error == f"feed {site.url}/gone: HTTP 404"
    assert stale(result, spec, NOW)
    plain = await check(client, site.url)
    assert (plain.content_updated_at, plain.content_source, plain.content_error) == (
        None,
        None,
        None,
    )


# -- TLS --------------------------------------------------------------------------------


@dataclass
class Pki:
    ca_file: str
    cert_file: str
    key_file: str


def make_pki(directory: Path, name: str, not_before: datetime, not_after: datetime) -> Pki:
    """A self-signed CA and a leaf for 127.0.0.1 and localhost, valid in the given span."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Alur test CA {name}")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before - timedelta(days=1))
        .not_valid_after(not_after + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(
        ca_file=str(directory / f"{name}-ca.pem"),
        cert_file=str(directory / f"{name}.pem"),
        key_file=str(directory / f"{name}.key"),
    )
    Path(pki.ca_file).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    Path(pki.cert_file).write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    Path(pki.key_file).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


def https_site(pki: Pki) -> Iterator[Running]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    yield from serve(context)


# Certificates are checked against the real clock, so their dates are set from it.
REAL_NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def expiring_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    return make_pki(
        directory, "expiring", REAL_NOW - timedelta(days=80), REAL_NOW + timedelta(days=10)
    )


@pytest.fixture(scope="module")
def expiring_site(expiring_pki: Pki) -> Iterator[Running]:
    yield from https_site(expiring_pki)


@pytest.fixture(scope="module")
def expired_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, Pki]]:
    directory = tmp_path_factory.mktemp("pki")
    pki = make_pki(
        directory, "expired", REAL_NOW - timedelta(days=90), REAL_NOW - timedelta(days=3)
    )
    for running in https_site(pki):
        yield running, pki


async def test_certificate_expiring_in_ten_days(expiring_site: Running, expiring_pki: Pki) -> None:
    status = await certificate_status(
        "127.0.0.1", expiring_site.port, timeout=5, ca_file=expiring_pki.ca_file
    )
    assert status.not_after == REAL_NOW + timedelta(days=10)
    assert status.verification_error is None
    now = datetime.now(UTC)
    assert expiry_alerts(status.not_after, now) == 14
    assert expiry_alerts(status.not_after, now, already_alerted=21) == 14  # newly crossed
    assert expiry_alerts(status.not_after, now, already_alerted=14) is None  # already sent


async def test_expired_certificate_is_read_despite_verification(
    expired_site: tuple[Running, Pki],
) -> None:
    running, pki = expired_site
    status = await certificate_status("127.0.0.1", running.port, timeout=5, ca_file=pki.ca_file)
    assert status.not_after == REAL_NOW - timedelta(days=3)
    assert status.verification_error == "certificate has expired"
    expiry = await certificate_expiry("127.0.0.1", running.port, timeout=5, ca_file=pki.ca_file)
    assert expiry == status.not_after
    assert expiry_alerts(expiry, datetime.now(UTC)) == 7


async def test_untrusted_issuer_is_reported(expiring_site: Running) -> None:
    # The system trust store does not know the test's CA.
    status = await certificate_status("127.0.0.1", expiring_site.port, timeout=5)
    assert status.not_after == REAL_NOW + timedelta(days=10)
    assert status.verification_error is not None
    assert "unable to get local issuer certificate" in status.verification_error


async def test_certificate_of_a_plain_http_server_is_an_error(site: Running) -> None:
    with pytest.raises(CertificateCheckError, match=f"127.0.0.1:{site.port}"):
        await certificate_expiry("127.0.0.1", site.port, timeout=2)


async def test_https_probe_verifies_the_chain(expiring_site: Running, expiring_pki: Pki) -> None:
    trusting = ssl.create_default_context(cafile=expiring_pki.ca_file)
    async with httpx.AsyncClient(verify=trusting) as client:
        assert (await check(client, expiring_site.url, keyword=KEYWORD)).up
    async with httpx.AsyncClient() as client:
        result = await check(client, expiring_site.url)
    assert (result.up, result.reason) == (False, ProbeReason.TLS_ERROR)
    assert "CERTIFICATE_VERIFY_FAILED" in (result.error or "")


# -- RDAP -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bootstrap(site: Running) -> RdapBootstrap:
    # IANA's format, as shipped in config: `.id` points at the local registry.
    return RdapBootstrap.load(
        {"version": "1.0", "services": [[["com", "id"], [f"{site.url}/rdap/"]]]}
    )


async def test_domain_expiry_for_go_id(
    site: Running, client: httpx.AsyncClient, bootstrap: RdapBootstrap
) -> None:
    assert await domain_expiry(client, "www.pn-tais.go.id", bootstrap) == DOMAIN_EXPIRES
    assert site.requested[-1] == "/rdap/domain/pn-tais.go.id"
    assert await domain_expiry(client, "noexpiry.go.id", bootstrap) is None


async def test_bootstrap_from_a_file(
    site: Running, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / "dns.json"
    path.write_text(json.dumps({"id": f"{site.url}/rdap"}))
    assert await domain_expiry(client, "pn-tais.go.id", RdapBootstrap.load(path)) == DOMAIN_EXPIRES


async def test_rdap_errors(client: httpx.AsyncClient, bootstrap: RdapBootstrap) -> None:
    with pytest.raises(UnknownTld, match=r"no RDAP server is configured for \.zz"):
        await domain_expiry(client, "pengadilan.zz", bootstrap)
    with pytest.raises(DomainNotFound, match=r"gone\.go\.id"):
        await domain_expiry(client, "gone.go.id", bootstrap)
    with pytest.raises(RdapMalformed, match="did not answer JSON"):
        await domain_expiry(client, "broken.go.id", bootstrap)
