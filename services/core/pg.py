"""Plain SQL for PostgreSQL through asyncpg: the helpers the hot paths share.

Many rows go in one statement as one JSON array parameter, turned back into typed rows
by `jsonb_to_recordset`: a fixed statement text (prepared once per connection) for any
number of rows, where a multi-row VALUES list would be a new statement for every count.
orjson writes the parameter in C; an array per column instead costs asyncpg 5-8 us of
CPU per parameter, which on a 66-column write was most of the statement's client cost.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


@functools.cache
def pg_type(column: sa.Column[Any]) -> str:
    """The column's PostgreSQL type, as a cast target (`VARCHAR(36)`, `JSONB`...)."""
    return str(column.type.compile(dialect=_DIALECT))


def pg_rows(table: sa.Table, names: Sequence[str], parameter: int) -> str:
    """`jsonb_to_recordset($n::jsonb) AS u(name1 T1, name2 T2, ...)`: the rows that
    `pg_json(rows)` passed as parameter `$n`, with the types of `table`'s columns."""
    columns = ", ".join(f"{name} {pg_type(table.c[name])}" for name in names)
    return f"jsonb_to_recordset(${parameter}::jsonb) AS u({columns})"


def pg_json(value: Any) -> str:
    """JSON text for a `jsonb` parameter (SQLAlchemy's asyncpg dialect registers the
    jsonb codec: it takes text). Datetimes become RFC 3339 with their offset; a naive
    one, which the UTC columns never hold, would be read as UTC."""
    return orjson.dumps(value, option=orjson.OPT_NAIVE_UTC).decode()
