"""The data-freshness probe: does the synchronised data keep up with the court's own data?

A sync job can fail for days while its log shows no error (in 2023 a database grant
blocked a stored procedure for 12 days), so the data is the judge: the newest timestamp
in the court's table against the newest in the synchronised table, both read on the same
server, so both are in the same timezone. The probe only reads — the session is set READ
ONLY and the account should be a read-only one — and every failure to reach or read the
database is a `probe_failed` reason, never an exception.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from services.core.sipp.config import SippDatabase
from services.core.sipp.reasons import Findings, ReasonCode

CONNECT_TIMEOUT_SECONDS = 5
QUERY_TIMEOUT_SECONDS = 10


def engine_url(url: str) -> sa.URL:
    """`mysql://…` (the operator's spelling) as the async driver SQLAlchemy needs."""
    return sa.make_url(url).set(drivername="mysql+aiomysql")


def quote_identifier(name: str) -> str:
    # Names are validated as plain identifiers in the config; backticks keep reserved
    # words (a column named `date`) working.
    return ".".join(f"`{part}`" for part in name.split("."))


class ProbeError(Exception):
    """The probe could not read a newest timestamp; the message is meant for staff."""


def _as_datetime(value: object, where: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ProbeError(
        f"{where} holds {value!r}, not a date/time — configure a DATETIME or TIMESTAMP column"
    )


async def _newest(connection: AsyncConnection, table: str, column: str) -> datetime | None:
    statement = sa.text(f"SELECT MAX({quote_identifier(column)}) FROM {quote_identifier(table)}")
    value = (await connection.execute(statement)).scalar()
    newest = _as_datetime(value, f"{table}.{column}")
    # Both sides come from one server; dropping any offset keeps them comparable.
    return newest.replace(tzinfo=None) if newest is not None else None


def _cause(error: BaseException) -> str:
    origin = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    return f"{type(origin).__name__}: {origin}"


def duration_text(minutes: float) -> str:
    if minutes < 120:
        return f"{minutes:.0f} minutes"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} hours"
    return f"{minutes / 1440:.1f} days"


async def _read(database: SippDatabase, shown: str) -> tuple[datetime | None, datetime | None]:
    engine = create_async_engine(
        engine_url(database.url),
        poolclass=NullPool,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    try:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                connection = await engine.connect()
        except TimeoutError as error:
            raise ProbeError(
                f"the SIPP database at {shown} did not accept a connection within "
                f"{CONNECT_TIMEOUT_SECONDS} s — check that the server is up and reachable"
            ) from error
        try:
            await connection.execute(sa.text("SET SESSION TRANSACTION READ ONLY"))
            async with asyncio.timeout(QUERY_TIMEOUT_SECONDS):
                internal = await _newest(
                    connection, database.internal_table, database.internal_column
                )
                synced = await _newest(connection, database.synced_table, database.synced_column)
            return internal, synced
        except TimeoutError as error:
            raise ProbeError(
                f"the SIPP database at {shown} did not answer the freshness queries within "
                f"{QUERY_TIMEOUT_SECONDS} s — index {database.internal_table}."
                f"{database.internal_column} and {database.synced_table}."
                f"{database.synced_column}, or check the server's load"
            ) from error
        finally:
            await connection.close()  # also ends the read-only transaction
    finally:
        await engine.dispose()


async def probe_freshness(database: SippDatabase) -> Findings:
    shown = engine_url(database.url).set(drivername="mysql").render_as_string(hide_password=True)
    findings = Findings(evidence={"database": shown, "max_lag_minutes": database.max_lag_minutes})
    try:
        internal, synced = await _read(database, shown)
    except ProbeError as error:
        findings.fail(ReasonCode.PROBE_FAILED, str(error))
        return findings
    except (SQLAlchemyError, OSError) as error:
        findings.fail(
            ReasonCode.PROBE_FAILED,
            f"cannot read the SIPP database at {shown} ({_cause(error)}) — check that the "
            "server is up, the read-only account and its grants, and the table names",
        )
        return findings
    _judge(findings, database, internal, synced)
    return findings


def _side(table: str, column: str, newest: datetime | None) -> dict[str, Any]:
    return {
        "table": table,
        "column": column,
        "newest": newest.isoformat(sep=" ") if newest is not None else None,
    }


def _judge(
    findings: Findings,
    database: SippDatabase,
    internal: datetime | None,
    synced: datetime | None,
) -> None:
    internal_name = f"{database.internal_table}.{database.internal_column}"
    synced_name = f"{database.synced_table}.{database.synced_column}"
    findings.evidence["internal"] = _side(
        database.internal_table, database.internal_column, internal
    )
    findings.evidence["synced"] = _side(database.synced_table, database.synced_column, synced)
    if internal is None:
        findings.evidence["lag_minutes"] = 0
        return  # no data of the court's own yet, so nothing can lag
    if synced is None:
        findings.fail(
            ReasonCode.SYNC_LAGGING,
            f"{synced_name} is empty while the court's newest data ({internal_name}) is from "
            f"{internal:%Y-%m-%d %H:%M} — nothing has ever been synchronised; check the sync "
            "job and its database grants",
        )
        return
    lag = max(0.0, (internal - synced).total_seconds() / 60)
    findings.evidence["lag_minutes"] = round(lag, 1)
    if lag > database.max_lag_minutes:
        findings.fail(
            ReasonCode.SYNC_LAGGING,
            f"the newest synchronised data ({synced_name} = {synced:%Y-%m-%d %H:%M}) is "
            f"{duration_text(lag)} behind the court's newest data ({internal_name} = "
            f"{internal:%Y-%m-%d %H:%M}), more than the {database.max_lag_minutes} minutes "
            "allowed — the synchronisation is failing even if its log is quiet; check the "
            "sync job and its database grants, then run it again",
        )
