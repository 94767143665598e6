"""How `alur` fails: one clear line on stderr and a non-zero exit, never a traceback.

An expected error (a domain error, invalid settings, an unknown migration, a server that
cannot be reached, a file that cannot be read) says what went wrong; anything else says
it was unexpected and how to see the traceback: `alur --debug …` or
`ALUR_LOG__LEVEL=DEBUG`. Tracebacks are Python's own, without local variables (typer's
pretty ones show them, and they can hold secrets).
"""

from __future__ import annotations

import os
import socket
import sys
import traceback

import typer
from alembic.util.exc import CommandError
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from services.core.errors import AlurError

# A server (the database, Redis) that cannot be reached.
_UNREACHABLE = (
    ConnectionError,
    socket.gaierror,
    TimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
)

# Exit statuses: 1 the command failed, 2 it was given something it cannot use.
FAILED = 1
UNUSABLE = 2

_tracebacks = False


def show_tracebacks() -> None:
    global _tracebacks
    _tracebacks = True


def refuse(message: str, code: int = UNUSABLE) -> typer.Exit:
    """Print why the command cannot go on; `raise` the result."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def run(app: typer.Typer) -> None:
    try:
        app()
    except Exception as exc:  # click handled its own usage errors and exits already
        sys.exit(report(exc))


def report(exc: Exception) -> int:
    """Print `exc` for a person; return the exit status."""
    expected = _expected(exc)
    shown = _tracebacks or _debug_logging()
    if shown:
        traceback.print_exception(exc)
    if expected is not None:
        message, code = expected
        typer.echo(f"error: {message}", err=True)
        return code
    hint = "" if shown else " (`alur --debug …` or ALUR_LOG__LEVEL=DEBUG shows its traceback)"
    typer.echo(f"error: unexpected {type(exc).__name__}: {_first_line(exc)}{hint}", err=True)
    return FAILED


def _expected(exc: Exception) -> tuple[str, int] | None:
    if isinstance(exc, AlurError):
        return exc.detail, FAILED
    if isinstance(exc, ValidationError):
        # Locations and messages only: pydantic's text would repeat the input, a secret too.
        reasons = "; ".join(_reason(error) for error in exc.errors())
        return f"{exc.title} not valid: {reasons}", UNUSABLE
    if isinstance(exc, CommandError):
        return f"migration: {exc}", UNUSABLE
    if isinstance(exc, DBAPIError) and (
        isinstance(exc, OperationalError | InterfaceError) or _is_refusal(exc.orig)
    ):
        # The driver's message, not SQLAlchemy's, which appends the statement and values.
        return f"database: {_first_line(exc.orig or exc)}", FAILED
    if isinstance(exc, _UNREACHABLE):
        return (
            f"cannot connect: {exc or type(exc).__name__} (is the server of "
            "ALUR_DATABASE__URL or ALUR_REDIS__URL running?)",
            FAILED,
        )
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}", FAILED
    return None


# SQLSTATE classes of a server that will not serve us: connection exception, invalid
# authorization, unknown database, operator intervention, insufficient resources.
_REFUSALS = ("08", "28", "3D", "57", "53")


def _is_refusal(error: BaseException | None) -> bool:
    return str(getattr(error, "sqlstate", "")).startswith(_REFUSALS)


def _reason(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def _debug_logging() -> bool:
    # The environment, not the settings: they may be what failed.
    return os.environ.get("ALUR_LOG__LEVEL", "").strip().upper() == "DEBUG"
