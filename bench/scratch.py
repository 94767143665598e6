"""A scratch PostgreSQL database per benchmark run: created next to the given server's
database, dropped at the end. Shared by the scripts in this folder."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import asyncpg
from sqlalchemy import make_url


@dataclass(frozen=True)
class Database:
    admin_dsn: str  # libpq DSN of the database CREATE/DROP DATABASE runs in
    dsn: str  # libpq DSN of the scratch database
    sqlalchemy_url: str
    name: str
    host: str
    port: int
    user: str


def scratch_database(postgres_url: str) -> Database:
    url = make_url(postgres_url)
    name = f"alur_bench_{secrets.token_hex(4)}"
    libpq = url.set(drivername="postgresql")
    return Database(
        admin_dsn=libpq.render_as_string(hide_password=False),
        dsn=libpq.set(database=name).render_as_string(hide_password=False),
        sqlalchemy_url=url.set(drivername="postgresql+asyncpg", database=name).render_as_string(
            hide_password=False
        ),
        name=name,
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
    )


async def admin(database: Database, statement: str) -> None:
    """Run `statement` (CREATE/DROP DATABASE) outside the scratch database."""
    connection = await asyncpg.connect(database.admin_dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
