"""When does a site's TLS certificate expire, and which reminder is due?

The expiry is read even when the certificate does not verify (already expired, wrong
name, unknown issuer): staff need the date most exactly then. The verification error is
reported beside the date rather than instead of it. Reminders follow Uptime Kuma's
21/14/7 days, each sent once: the caller keeps the last threshold alerted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

DEFAULT_THRESHOLDS = (21, 14, 7)


class CertificateCheckError(Exception):
    """No certificate could be read: the host is unreachable or does not speak TLS."""


@dataclass(frozen=True)
class CertificateStatus:
    not_after: datetime
    # None when the chain and host name verified; otherwise OpenSSL's reason in words.
    verification_error: str | None


async def certificate_status(
    host: str,
    port: int,
    *,
    timeout: float,  # noqa: ASYNC109 — one bound for connect + handshake, set per monitor
    ca_file: str | None = None,
) -> CertificateStatus:
    """The peer certificate's notAfter (UTC) and whether it verified against `ca_file`
    (default: the system's trust store)."""
    verifying = ssl.create_default_context(cafile=ca_file)
    try:
        der = await _peer_certificate(host, port, verifying, timeout)
    except ssl.SSLCertVerificationError as error:
        verification_error: str | None = error.verify_message or str(error)
        # Read it again without verifying, only to learn the date.
        lenient = ssl.create_default_context()
        lenient.check_hostname = False
        lenient.verify_mode = ssl.CERT_NONE
        der = await _peer_certificate(host, port, lenient, timeout)
    else:
        verification_error = None
    not_after = x509.load_der_x509_certificate(der).not_valid_after_utc
    return CertificateStatus(not_after=not_after, verification_error=verification_error)


async def certificate_expiry(
    host: str,
    port: int,
    *,
    timeout: float,  # noqa: ASYNC109 — see certificate_status
    ca_file: str | None = None,
) -> datetime:
    """notAfter (UTC) of the certificate `host:port` presents, verified or not."""
    status = await certificate_status(host, port, timeout=timeout, ca_file=ca_file)
    return status.not_after


def expiry_alerts(
    not_after: datetime,
    now: datetime,
    thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
    *,
    already_alerted: int | None = None,
) -> int | None:
    """The threshold (in days) newly crossed, or None when no new reminder is due.

    The crossed threshold is the smallest with `days_left <= threshold`, so a certificate
    found 10 days before expiry answers 14 (21 is passed over: one reminder, the most
    urgent). `already_alerted` is the threshold reminded last; only a smaller one is new.
    An expired certificate crosses every threshold (the smallest is returned); compare
    `not_after` with `now` to word it as "expired".
    """
    days_left = (not_after - now) / timedelta(days=1)
    crossed = [threshold for threshold in thresholds if days_left <= threshold]
    if not crossed:
        return None
    smallest = min(crossed)
    if already_alerted is not None and smallest >= already_alerted:
        return None
    return smallest


async def _peer_certificate(host: str, port: int, context: ssl.SSLContext, seconds: float) -> bytes:
    try:
        async with asyncio.timeout(seconds):
            _, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=host, ssl_handshake_timeout=seconds
            )
    except ssl.SSLCertVerificationError:
        raise
    except TimeoutError as error:
        raise CertificateCheckError(
            f"{host}:{port}: no TLS handshake within {seconds:g} s"
        ) from error
    except OSError as error:  # refused, unreachable, reset, not TLS (ssl.SSLError)
        raise CertificateCheckError(f"{host}:{port}: {type(error).__name__}: {error}") from error
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    finally:
        writer.close()
        # A peer that never answers close_notify must not hold the check.
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(seconds):
                await writer.wait_closed()
    if not der:
        raise CertificateCheckError(f"{host}:{port}: the server presented no certificate")
    return bytes(der)
