"""An identity provider's public keys, fetched from its JWKS URL and cached."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import httpx
import structlog

from services.core.identity.tokens import PublicKey, parse_jwks

log = structlog.get_logger(__name__)

# Fetches happen at most this often: a token with a kid nobody knows makes the keys be
# fetched again (the provider rotated), and a provider that is down is asked again after.
MIN_INTERVAL_SECONDS = 10.0
TIMEOUT_SECONDS = 5.0


class RemoteJwks:
    """A `KeySource` over a JWKS URL: fetched when older than `cache_seconds`, or when a
    token names an unknown kid (the provider rotated). A failed fetch keeps the keys
    known so far; keys the provider stopped publishing are dropped."""

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._cache_seconds = cache_seconds
        self._transport = transport
        self._clock = clock
        self._keys: tuple[PublicKey, ...] = ()
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    def public_keys(self) -> Sequence[PublicKey]:
        return self._keys

    def stale(self) -> bool:
        now = self._clock()
        due = self._fetched_at is None or now - self._fetched_at >= self._cache_seconds
        return due and not self._recently_attempted(now)

    def _recently_attempted(self, now: float) -> bool:
        return self._attempted_at is not None and now - self._attempted_at < MIN_INTERVAL_SECONDS

    async def refresh(self, *, unknown_kid: bool = False) -> None:
        async with self._lock:
            if self._recently_attempted(self._clock()) or not (unknown_kid or self.stale()):
                return  # just fetched (perhaps by the request this one waited for)
            self._attempted_at = self._clock()
            try:
                async with httpx.AsyncClient(
                    transport=self._transport, timeout=TIMEOUT_SECONDS
                ) as client:
                    response = await client.get(self._url, headers={"accept": "application/json"})
                    response.raise_for_status()
                    keys = parse_jwks(response.json(), f"JWKS {self._url}", strict=False)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("jwks fetch failed", url=self._url, error=str(exc))
                return
            self._keys = keys
            self._fetched_at = self._clock()
            log.info("jwks fetched", url=self._url, keys=len(keys))
