"""A dependency that is unreachable rather than broken: the errors that say so, and each
dependency's state as one process sees it, logged once per change.

The API answers such an error with 503 and `Retry-After` instead of 500; the worker
waits and tries again instead of failing its jobs or dying. Both log an outage when it
begins and when it ends, not on every attempt in between.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors

log = structlog.get_logger(__name__)

# PostgreSQL SQLSTATEs of a server that cannot serve now: the connection failed or was
# lost (class 08), the server is shutting down or starting up (57P01-57P03), or it has
# no connection slot left (53300).
_POSTGRES_UNAVAILABLE = ("08", "57P01", "57P02", "57P03", "53300")
# SQLite's: its file cannot be opened (the volume is gone), another writer holds it.
_SQLITE_UNAVAILABLE = ("unable to open database file", "database is locked", "disk I/O error")
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ENETDOWN,
        errno.ENETUNREACH,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
        errno.ETIMEDOUT,
        errno.EADDRNOTAVAIL,
    }
)
# Connection refused, reset or timed out; a replica after a failover; "LOADING" at start.
_REDIS_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
)


def _network_failure(error: BaseException) -> bool:
    if isinstance(error, ConnectionError | TimeoutError | socket.gaierror):
        return True
    if not isinstance(error, OSError):
        return False
    if error.errno in _NETWORK_ERRNOS:
        return True
    # asyncio gives up on a host with several addresses with one OSError naming them all.
    return error.errno is None and str(error).startswith("Multiple exceptions:")


def database_unavailable(error: BaseException) -> bool:
    """The database could not be reached or cannot serve now; the same work may succeed
    once it is back. Errors of the work itself (a constraint, a bad statement) are not."""
    if isinstance(error, sa_errors.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(error, sa_errors.DBAPIError):
        if error.connection_invalidated:
            return True
        sqlstate = getattr(error.orig, "sqlstate", None) or ""
        if sqlstate.startswith(_POSTGRES_UNAVAILABLE):
            return True
        message = str(error.orig)
        return isinstance(error, sa_errors.OperationalError) and any(
            text in message for text in _SQLITE_UNAVAILABLE
        )
    # asyncpg's connect raises these unwrapped: SQLAlchemy wraps only the driver's errors.
    return _network_failure(error)


def redis_unavailable(error: BaseException) -> bool:
    return isinstance(error, _REDIS_UNAVAILABLE) or _network_failure(error)


def describe(error: BaseException) -> str:
    """What went wrong, for a log line: the driver's own message, never the statement
    and parameters SQLAlchemy adds to its errors."""
    if isinstance(error, sa_errors.DBAPIError) and error.orig is not None:
        error = error.orig
    return f"{type(error).__name__}: {error}"[:300]


# For a worker, whose own retries and probes meet every restart, a failure shorter than
# this is a blip (a pooled connection that died with a restart, an answer slow under
# load), not an outage: it is logged once it lasted this long (`Outages.of_worker`).
WORKER_CONFIRM_SECONDS = 1.0


class Dependency:
    """One dependency's state as this process sees it. `lost` and `back` may be called
    on every attempt; the log says when an outage began and when it ended, once each.
    `available` turns false at the first failure; the log waits `confirm_seconds` for the
    failures to persist, so that blips never make a pair of lines."""

    def __init__(
        self,
        name: str,
        *,
        confirm_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._confirm_seconds = confirm_seconds
        self._clock = clock
        self._down_since: float | None = None
        self._reported = False

    @property
    def available(self) -> bool:
        return self._down_since is None

    def lost(self, error: BaseException) -> None:
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
        if not self._reported and now - self._down_since >= self._confirm_seconds:
            self._reported = True
            log.warning(f"{self.name} unavailable", error=describe(error))

    def back(self) -> None:
        if self._down_since is None:
            return
        down = self._clock() - self._down_since
        self._down_since = None
        if self._reported:
            self._reported = False
            # A warning too: a log kept at WARNING must show the outage's end as well.
            log.warning(f"{self.name} back", down_seconds=round(down, 1))


@dataclass
class Outages:
    """The dependencies of a process: the database and Redis."""

    database: Dependency = field(default_factory=lambda: Dependency("database"))
    redis: Dependency = field(default_factory=lambda: Dependency("redis"))

    @classmethod
    def of_worker(cls) -> Outages:
        return cls(
            Dependency("database", confirm_seconds=WORKER_CONFIRM_SECONDS),
            Dependency("redis", confirm_seconds=WORKER_CONFIRM_SECONDS),
        )
