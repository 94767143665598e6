"""Plain SQL for PostgreSQL through asyncpg: the helpers the hot paths share.

Many rows go in one statement as one array per column, `unnest`ed back into rows: a
fixed statement text (prepared once per connection) for any number of rows, where a
multi-row VALUES list would be a new statement for every count.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


@functools.cache
def pg_type(column: sa.Column[Any]) -> str:
    """The column's PostgreSQL type, as a cast target (`VARCHAR(36)`, `JSONB`...)."""
    return str(column.type.compile(dialect=_DIALECT))


def is_json(column: sa.Column[Any]) -> bool:
    return pg_type(column) in ("JSON", "JSONB")


def pg_arrays(table: sa.Table, names: Sequence[str], start: int = 1) -> str:
    """`unnest($1::T1[], $2::T2[], ...) AS u(name1, name2, ...)`: one parameter per column
    of `table`, each an array holding that column of every row."""
    casts = ", ".join(f"${start + i}::{pg_type(table.c[name])}[]" for i, name in enumerate(names))
    return f"unnest({casts}) AS u({', '.join(names)})"


def json_text(value: Any) -> str:
    # SQLAlchemy's asyncpg dialect registers the json/jsonb codecs: they take JSON text.
    return orjson.dumps(value).decode()


def pg_columns(
    table: sa.Table, rows: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> list[list[Any]]:
    """The arrays for `pg_arrays(table, names)`: JSON columns as text."""
    return [
        [json_text(row[name]) for row in rows]
        if is_json(table.c[name])
        else [row[name] for row in rows]
        for name in names
    ]
