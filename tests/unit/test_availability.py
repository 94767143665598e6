"""Which errors mean a dependency is down (try again later) rather than a fault, and the
once-per-change log of an outage. The errors are those the drivers raise (seen against
real servers in tests/e2e/test_worker_outages.py and tests/integration/test_unavailable.py)."""

from __future__ import annotations

import errno
import socket
import sqlite3

import asyncpg
import pytest
import redis.exceptions
from sqlalchemy import exc as sa_errors
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from structlog.testing import capture_logs

from services.core.availability import (
    Dependency,
    database_unavailable,
    describe,
    redis_unavailable,
)

_dbapi = AsyncAdapt_asyncpg_dbapi(asyncpg)  # type: ignore[no-untyped-call]


def _postgres(error: Exception, *, invalidated: bool = False) -> sa_errors.StatementError:
    """SQLAlchemy's wrapping of an asyncpg error, as the asyncpg dialect translates it."""
    translated = _dbapi.Error(str(error), error)  # type: ignore[no-untyped-call]
    return sa_errors.DBAPIError.instance(
        "SELECT secret FROM t WHERE token = $1",
        ("tok_123",),
        translated,
        _dbapi.Error,
        connection_invalidated=invalidated,
    )


def _sqlite(message: str) -> sa_errors.StatementError:
    return sa_errors.DBAPIError.instance(
        "SELECT 1", (), sqlite3.OperationalError(message), sqlite3.Error
    )


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        # Connecting to a stopped server: asyncpg's socket errors, unwrapped.
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"), True),
        (OSError(errno.EHOSTUNREACH, "No route to host"), True),
        (OSError("Multiple exceptions: [Errno 111] refused, [Errno 99] not available"), True),
        (socket.gaierror(-2, "Name or service not known"), True),
        (TimeoutError(), True),
        # A session cut by a restart; the server shutting down or starting up.
        (_postgres(asyncpg.ConnectionDoesNotExistError("closed"), invalidated=True), True),
        (_postgres(asyncpg.AdminShutdownError("terminating connection")), True),
        (_postgres(asyncpg.CannotConnectNowError("the database system is starting up")), True),
        (_postgres(asyncpg.TooManyConnectionsError("too many clients")), True),
        (sa_errors.TimeoutError("QueuePool limit of size 20 overflow 0 reached"), True),
        (_sqlite("unable to open database file"), True),
        (_sqlite("database is locked"), True),
        # Faults of the work itself: a 500, not a 503.
        (_postgres(asyncpg.UniqueViolationError("duplicate key")), False),
        (_postgres(asyncpg.UndefinedTableError('relation "x" does not exist')), False),
        (_sqlite("no such table: instance"), False),
        (FileNotFoundError(errno.ENOENT, "No such file", "/srv/backup"), False),
        (PermissionError(errno.EACCES, "Permission denied"), False),
        (ValueError("bad"), False),
    ],
)
def test_database_unavailable(error: BaseException, unavailable: bool) -> None:
    assert database_unavailable(error) is unavailable


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (redis.exceptions.ConnectionError("Error 111 connecting"), True),
        (redis.exceptions.TimeoutError("Timeout reading from socket"), True),
        (redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"), True),
        (redis.exceptions.ReadOnlyError("You can't write against a read only replica"), True),
        (redis.exceptions.ResponseError("WRONGTYPE Operation against a key"), False),
        (redis.exceptions.DataError("Invalid input"), False),
    ],
)
def test_redis_unavailable(error: BaseException, unavailable: bool) -> None:
    assert redis_unavailable(error) is unavailable


def test_the_description_keeps_the_statement_and_parameters_out() -> None:
    described = describe(_postgres(asyncpg.AdminShutdownError("terminating connection")))
    assert "terminating connection" in described
    assert "tok_123" not in described
    assert "SELECT" not in described


def test_an_outage_is_logged_when_it_begins_and_when_it_ends() -> None:
    database = Dependency("database")
    with capture_logs() as logs:
        database.back()  # nothing was lost: nothing to say
        for _ in range(3):
            database.lost(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
        assert not database.available
        database.back()
        database.back()
        database.lost(TimeoutError())
    assert [line["event"] for line in logs] == [
        "database unavailable",
        "database back",
        "database unavailable",
    ]
    assert logs[0]["error"] == "ConnectionRefusedError: [Errno 111] refused"
    assert [line["log_level"] for line in logs] == ["warning"] * 3
    assert isinstance(logs[1]["down_seconds"], float)


def test_a_blip_is_not_an_outage() -> None:
    """Failures that end within `confirm_seconds` say nothing; one that lasts says when
    it began to be sure, and its end."""
    now = [100.0]
    redis = Dependency("redis", confirm_seconds=1.0, clock=lambda: now[0])
    with capture_logs() as logs:
        redis.lost(ConnectionResetError())
        assert not redis.available
        now[0] += 0.4
        redis.lost(ConnectionResetError())
        redis.back()
        assert redis.available
        redis.lost(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
        now[0] += 1.5
        redis.lost(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
        redis.lost(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
        now[0] += 2.0
        redis.back()
    assert [line["event"] for line in logs] == ["redis unavailable", "redis back"]
    assert logs[1]["down_seconds"] == 3.5
