"""When does a court's domain expire? Asked over RDAP, `go.id` included.

Uptime Kuma treats `go.id` as unsupported, yet every court site is `*.go.id` and the `.id`
registry (PANDI) runs RDAP. Which server answers for a TLD comes from a bootstrap: the IANA
bootstrap file format (RFC 9224, `{"services": [[["id"], ["https://…/rdap/"]], …]}`) or a
plain `{"id": "https://…/rdap/"}` mapping, loaded from a JSON file or a dict in config.

Indonesia registers names under second-level domains (`pn-tais.go.id`), so for `.id` the
registrable domain is the last three labels when the second label is one of
`INDONESIAN_SECOND_LEVEL`; elsewhere it is the last two (no public-suffix list: enough
for `.id` and `.com`-like TLDs, wrong for e.g. `co.uk`, which callers can pass already
reduced).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx

# PANDI's second-level domains under `.id`: government (go), academic (ac), companies
# (co), organisations (or), personal sites (web), schools (sch), the military (mil),
# network providers (net), individuals (my), businesses (biz), Islamic boarding schools
# (ponpes) and villages (desa). A name directly under `.id` (e.g. `pandi.id`) has two labels.
INDONESIAN_SECOND_LEVEL = frozenset(
    {"go", "ac", "co", "or", "web", "sch", "mil", "net", "my", "biz", "ponpes", "desa"}
)

# The `.id` registry's RDAP service, for configs that give no bootstrap of their own.
PANDI_BOOTSTRAP: dict[str, Any] = {"services": [[["id"], ["https://rdap.pandi.id/rdap/"]]]}


class RdapError(Exception):
    """The domain's expiry could not be learnt; `code` is stable, the message is for staff."""

    code: ClassVar[str] = "rdap_error"


class UnknownTld(RdapError):
    code = "rdap_unknown_tld"


class DomainNotFound(RdapError):
    code = "rdap_domain_not_found"


class RdapMalformed(RdapError):
    code = "rdap_malformed"


class RdapUnavailable(RdapError):
    code = "rdap_unavailable"


class BootstrapError(ValueError):
    """The bootstrap given in config is not one this module can read."""


@dataclass(frozen=True)
class RdapBootstrap:
    """TLD (lower case, no dot) -> RDAP base URL ending in `/`."""

    servers: Mapping[str, str]

    @classmethod
    def load(cls, source: Mapping[str, Any] | str | Path) -> RdapBootstrap:
        """From a dict or a JSON file, in IANA bootstrap format or as a plain mapping."""
        if isinstance(source, Mapping):
            data: Any = source
        else:
            try:
                data = json.loads(Path(source).read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise BootstrapError(f"RDAP bootstrap {source}: {error}") from error
        if not isinstance(data, Mapping):
            raise BootstrapError("an RDAP bootstrap is a JSON object")
        if "services" in data:
            return cls(servers=_from_iana(data["services"]))
        if not all(isinstance(url, str) for url in data.values()):
            raise BootstrapError("a plain RDAP bootstrap maps each TLD to one base URL")
        return cls(servers={_tld(key): _base(url) for key, url in data.items()})

    def base_for(self, domain: str) -> str:
        tld = domain.rsplit(".", 1)[-1]
        try:
            return self.servers[tld]
        except KeyError:
            raise UnknownTld(f"no RDAP server is configured for .{tld} (domain {domain})") from None


def registrable_domain(name: str) -> str:
    """`www.pn-tais.go.id` -> `pn-tais.go.id`; `www.example.com` -> `example.com`."""
    labels = [label for label in name.strip().rstrip(".").lower().split(".") if label]
    if len(labels) < 2:
        raise ValueError(f"{name!r} is not a domain name")
    under_second_level = labels[-1] == "id" and labels[-2] in INDONESIAN_SECOND_LEVEL
    keep = 3 if under_second_level and len(labels) >= 3 else 2
    return ".".join(labels[-keep:])


async def domain_expiry(
    client: httpx.AsyncClient, domain: str, bootstrap: RdapBootstrap
) -> datetime | None:
    """The registration's `expiration` event (UTC), or None when the registry gives none.

    `domain` may be any host name under the domain; it is reduced to the registrable name.
    """
    name = registrable_domain(domain)
    url = f"{bootstrap.base_for(name)}domain/{name}"
    try:
        response = await client.get(
            url, headers={"Accept": "application/rdap+json"}, follow_redirects=True
        )
    except httpx.HTTPError as error:
        raise RdapUnavailable(f"RDAP {url}: {type(error).__name__}: {error}") from error
    if response.status_code == 404:
        raise DomainNotFound(f"the registry does not know {name} (RDAP {url} answered 404)")
    if response.status_code != 200:
        raise RdapUnavailable(f"RDAP {url} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError as error:
        raise RdapMalformed(f"RDAP {url} did not answer JSON: {error}") from error
    if not isinstance(body, dict):
        raise RdapMalformed(f"RDAP {url} did not answer a JSON object")
    events = body.get("events", [])
    if not isinstance(events, list):
        raise RdapMalformed(f"RDAP {url}: `events` is not a list")
    for event in events:
        if isinstance(event, dict) and event.get("eventAction") == "expiration":
            return _event_date(event.get("eventDate"), url)
    return None


def _event_date(value: object, url: str) -> datetime:
    if not isinstance(value, str):
        raise RdapMalformed(f"RDAP {url}: the expiration event has no eventDate")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise RdapMalformed(f"RDAP {url}: eventDate {value!r} is not RFC 3339") from error
    # RFC 9083 dates carry an offset; a registry that omits it is taken to mean UTC.
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _from_iana(services: object) -> dict[str, str]:
    if not isinstance(services, list):
        raise BootstrapError("`services` in an RDAP bootstrap is a list")
    servers: dict[str, str] = {}
    for entry in services:
        if not (isinstance(entry, list) and len(entry) >= 2):
            raise BootstrapError(f"bootstrap entry {entry!r} is not [[tlds], [urls]]")
        tlds, urls = entry[0], entry[1]
        if not (isinstance(tlds, list) and isinstance(urls, list) and urls):
            raise BootstrapError(f"bootstrap entry {entry!r} is not [[tlds], [urls]]")
        # RFC 9224: prefer an https URL when the registry lists several.
        url = next((u for u in urls if str(u).startswith("https://")), urls[0])
        for tld in tlds:
            servers[_tld(str(tld))] = _base(str(url))
    return servers


def _tld(key: str) -> str:
    return key.strip().lstrip(".").lower()


def _base(url: str) -> str:
    return url if url.endswith("/") else url + "/"
