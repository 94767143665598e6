"""Where a webhook may go: http(s) URLs whose host resolves only to public addresses.

Checked when a subscription is saved and again before every attempt. At delivery the
request is pinned to the address that was checked (the URL's host replaced by it, the
name kept in `Host` and in TLS SNI and certificate checks), so a name re-pointed at an
internal address between the check and the connection (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from services.core.errors import AlurError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookUrlForbidden(AlurError):
    code = "webhook_url_forbidden"
    status = 422
    title = "The webhook URL is not allowed"


class WebhookUrlUnresolvable(AlurError):
    code = "webhook_url_unresolvable"
    status = 422
    title = "The webhook URL's host does not resolve"


def forbidden_reason(address: Address) -> str | None:
    """Why an address may not receive webhooks, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 reaches 127.0.0.1
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        # Shared address space (100.64/10) and the like: not private, not public either.
        ("not globally routable", not address.is_global),
    )
    return next((reason for reason, applies in checks if applies), None)


def _parts(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookUrlForbidden(f"Only http and https URLs can receive webhooks, not {url!r}")
    if not parts.hostname:
        raise WebhookUrlForbidden(f"The URL {url!r} names no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookUrlForbidden(f"The URL {url!r} has an invalid port") from None
    return parts.hostname, port


async def resolve(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookUrlUnresolvable(f"{host!r} does not resolve: {exc}") from None
    # A scoped IPv6 address carries `%interface`, which ip_address refuses.
    found = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    return list(dict.fromkeys(found))


async def check_url(url: str, *, allow_private: bool) -> list[Address]:
    """The addresses `url` resolves to, all of them public (unless allowed)."""
    host, port = _parts(url)
    if allow_private:
        return []
    addresses = await resolve(host, port)
    for address in addresses:
        reason = forbidden_reason(address)
        if reason is not None:
            raise WebhookUrlForbidden(
                f"{host!r} resolves to {address}, a {reason} address: webhooks go only to "
                f"public addresses",
                extra={"address": str(address), "reason": reason},
            )
    return addresses


@dataclass(frozen=True)
class Target:
    """What to connect to for one attempt."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


def pinned(url: str, address: Address) -> Target:
    original = httpx.URL(url)
    headers = {"host": original.netloc.decode("ascii")}
    extensions = {"sni_hostname": original.host} if original.scheme == "https" else {}
    return Target(str(original.copy_with(host=str(address))), headers, extensions)


async def target(url: str, *, allow_private: bool) -> Target:
    if allow_private:
        _parts(url)
        return Target(url)
    addresses = await check_url(url, allow_private=False)
    if not addresses:
        raise WebhookUrlUnresolvable(f"{url!r} resolves to no address")
    return pinned(url, addresses[0])
