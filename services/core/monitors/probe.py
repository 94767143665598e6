"""One HTTP check of a court website: status, keyword, latency and how fresh its content is.

A check never raises for anything the site does: timeouts, refused connections and TLS
failures become a result with `up=False` and a stable `reason`, so the caller can record
every check the same way. Redirects are followed (court sites send `http://` to
`https://`), and `expected_status` is compared with the final answer.

Content freshness (UU 14/2008 wants periodic information published at least every six
months) is judged by the newest item of an RSS 2.0 (`pubDate`) or Atom (`updated`, else
`published`) feed — the one at `feed_url`, or the page itself when it is a feed — and
otherwise by the page's `Last-Modified` header. A feed that cannot be read never makes the
site "down"; it is reported in `content_error` and the header is used instead.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Literal
from xml.etree import ElementTree

import httpx

# A keyword is searched in the first MAX_BODY_BYTES only: a monitor must not download a
# mistakenly linked disk image every minute.
MAX_BODY_BYTES = 5 * 1024 * 1024
ATOM = "{http://www.w3.org/2005/Atom}"

KeywordMode = Literal["present", "absent"]
ContentSource = Literal["feed", "last_modified"]


class ProbeReason(StrEnum):
    """Why a check counts as failed (contract: stored with each check, shown to staff)."""

    STATUS_MISMATCH = "status_mismatch"
    KEYWORD_MISSING = "keyword_missing"
    KEYWORD_PRESENT = "keyword_present"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    TLS_ERROR = "tls_error"


@dataclass(frozen=True)
class MonitorSpec:
    """What to check. The keyword is matched case-sensitively, as typed by staff."""

    url: str
    timeout_seconds: float = 10.0
    expected_status: int = 200
    keyword: str | None = None
    keyword_mode: KeywordMode = "present"
    freshness_days: int | None = None
    feed_url: str | None = None


@dataclass(frozen=True)
class HttpResult:
    checked_at: datetime
    up: bool
    status_code: int | None = None
    latency_ms: float | None = None
    reason: ProbeReason | None = None
    error: str | None = None
    # The page's own Last-Modified header, and the newest content date found at all.
    last_modified: datetime | None = None
    content_updated_at: datetime | None = None
    content_source: ContentSource | None = None
    content_error: str | None = None


class FeedError(Exception):
    """A document that should be a feed could not be read as one."""


async def check_http(client: httpx.AsyncClient, spec: MonitorSpec, now: datetime) -> HttpResult:
    """Fetch `spec.url` once and judge it; `now` stamps the result (the caller's clock)."""
    started = time.perf_counter()
    try:
        status, headers, body, encoding = await _fetch(client, spec.url, spec.timeout_seconds)
    except (TimeoutError, httpx.TimeoutException):
        waited = f"no answer within {spec.timeout_seconds:g} s"
        return HttpResult(checked_at=now, up=False, reason=ProbeReason.TIMEOUT, error=waited)
    except httpx.RequestError as failure:  # refused, reset, TLS, too many redirects…
        tls = _tls_cause(failure)
        if tls is not None:
            return HttpResult(
                checked_at=now, up=False, reason=ProbeReason.TLS_ERROR, error=f"TLS: {tls}"
            )
        cause = f"{type(failure).__name__}: {failure}"
        return HttpResult(
            checked_at=now, up=False, reason=ProbeReason.CONNECTION_ERROR, error=cause
        )
    latency_ms = (time.perf_counter() - started) * 1000
    last_modified = _http_date(headers.get("last-modified"))
    reason, error = _judge(spec, status, body.decode(encoding, errors="replace"))

    newest: datetime | None = None
    source: ContentSource | None = None
    content_error: str | None = None
    if reason is None:  # a page that is down has no content worth dating
        newest, content_error = await _newest_feed_item(client, spec, headers, body)
        if newest is not None:
            source = "feed"
        elif last_modified is not None:
            newest, source = last_modified, "last_modified"
    return HttpResult(
        checked_at=now,
        up=reason is None,
        status_code=status,
        latency_ms=latency_ms,
        reason=reason,
        error=error,
        last_modified=last_modified,
        content_updated_at=newest,
        content_source=source,
        content_error=content_error,
    )


def _judge(spec: MonitorSpec, status: int, text: str) -> tuple[ProbeReason | None, str | None]:
    if status != spec.expected_status:
        return ProbeReason.STATUS_MISMATCH, f"HTTP {status}, expected {spec.expected_status}"
    if not spec.keyword:
        return None, None
    found = spec.keyword in text
    if spec.keyword_mode == "present" and not found:
        return ProbeReason.KEYWORD_MISSING, f"keyword {spec.keyword!r} not found"
    if spec.keyword_mode == "absent" and found:
        return ProbeReason.KEYWORD_PRESENT, f"keyword {spec.keyword!r} found"
    return None, None


def content_stale(result: HttpResult, spec: MonitorSpec, now: datetime) -> bool:
    """True only when the newest known content is older than `freshness_days`.

    Unknown freshness (no feed, no header) is not "stale": the result's
    `content_updated_at is None` tells that case apart.
    """
    if spec.freshness_days is None or result.content_updated_at is None:
        return False
    return now - result.content_updated_at > timedelta(days=spec.freshness_days)


def newest_feed_date(document: bytes) -> datetime | None:
    """The newest item date of an RSS 2.0 or Atom document; `FeedError` when it is neither.

    Dates without an offset are taken as UTC; unparseable dates are skipped, since one
    badly typed item should not hide the others.
    """
    # Entity declarations have no place in a feed and are how XML bombs are built.
    if b"<!ENTITY" in document:
        raise FeedError("the document declares XML entities; refusing to expand them")
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as error:
        raise FeedError(f"not XML: {error}") from error
    if root.tag == "rss":
        texts = [item.findtext("pubDate") for item in root.iterfind("channel/item")]
        dates = [_feed_date(text, rfc822=True) for text in texts]
    elif root.tag == f"{ATOM}feed":
        dates = []
        for entry in root.iterfind(f"{ATOM}entry"):
            text = entry.findtext(f"{ATOM}updated") or entry.findtext(f"{ATOM}published")
            dates.append(_feed_date(text, rfc822=False))
    else:
        raise FeedError(f"neither RSS 2.0 nor Atom (root element {root.tag!r})")
    known = [date for date in dates if date is not None]
    return max(known, default=None)


async def _fetch(
    client: httpx.AsyncClient, url: str, seconds: float
) -> tuple[int, httpx.Headers, bytes, str]:
    # httpx's timeout is per operation; the outer one bounds a server that drips bytes.
    async with asyncio.timeout(seconds):
        async with client.stream("GET", url, timeout=seconds, follow_redirects=True) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= MAX_BODY_BYTES:
                    break
            encoding = response.encoding or "utf-8"
            return response.status_code, response.headers, bytes(body), encoding


def _tls_cause(error: BaseException) -> ssl.SSLError | None:
    """The `ssl` error behind an httpx transport error, if the failure was TLS."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _looks_like_feed(headers: httpx.Headers, body: bytes) -> bool:
    content_type = headers.get("content-type", "").lower()
    if "rss" in content_type or "atom" in content_type:
        return True
    head = body[:512].lstrip()
    return head.startswith(b"<?xml") or head.startswith((b"<rss", b"<feed"))


async def _newest_feed_item(
    client: httpx.AsyncClient, spec: MonitorSpec, headers: httpx.Headers, body: bytes
) -> tuple[datetime | None, str | None]:
    """(newest item date, why the feed could not be read)."""
    if spec.feed_url is None:
        if not _looks_like_feed(headers, body):
            return None, None
        document = body
    else:
        try:
            status, _, document, _ = await _fetch(client, spec.feed_url, spec.timeout_seconds)
        except (TimeoutError, httpx.HTTPError) as error:
            return None, f"feed {spec.feed_url}: {type(error).__name__}: {error}"
        if status != 200:
            return None, f"feed {spec.feed_url}: HTTP {status}"
    try:
        return newest_feed_date(document), None
    except FeedError as error:
        # A page that merely starts with `<?xml` (XHTML) is not a broken feed.
        return None, (str(error) if spec.feed_url else None)


def _feed_date(text: str | None, *, rfc822: bool) -> datetime | None:
    if not text:
        return None
    text = text.strip()
    parsed = _http_date(text) if rfc822 else None
    if parsed is None:
        # Atom is RFC 3339; some RSS generators also write ISO dates in pubDate.
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _http_date(text: str | None) -> datetime | None:
    """An RFC 822/1123 date (HTTP headers, RSS), or None when it is not one."""
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
