"""Migrations run forward to head, back to nothing, and forward again, on this backend."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy.ext.asyncio import create_async_engine

from services.core import migrate
from services.core.audit.models import AuditEventRecord, OutboxRecord
from services.core.instances.models import InstanceRecord
from services.core.satkers.models import SatkerRecord
from services.core.secrets import new_key, unseal
from services.core.settings import get_settings
from tests.support import TEST_DATABASE_URL, create_database, drop_database


@pytest.fixture
async def scratch_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    if TEST_DATABASE_URL is None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"
        name = None
    else:
        name = f"alur_scratch_{uuid.uuid4().hex[:10]}"
        await create_database(TEST_DATABASE_URL, name)
        url = sa.make_url(TEST_DATABASE_URL).set(database=name).render_as_string(False)
    monkeypatch.setenv("ALUR_DATABASE__URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
    if name is not None:
        await drop_database(TEST_DATABASE_URL, name)  # type: ignore[arg-type]


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    await engine.dispose()
    return set(names)


async def test_upgrade_downgrade_upgrade(scratch_database: str) -> None:
    await asyncio.to_thread(migrate.upgrade)
    tables = await _tables(scratch_database)
    assert {"sop_definition", "role", "alembic_version"} <= tables

    await asyncio.to_thread(migrate.downgrade, "base")
    assert await _tables(scratch_database) <= {"alembic_version"}

    await asyncio.to_thread(migrate.upgrade)
    assert await _tables(scratch_database) == tables


async def test_downgrade_gives_waiting_event_rows_their_body_back(scratch_database: str) -> None:
    """0007 lets an instance event's outbox row refer to its event; going back to 0006
    (payload required) writes the body it would have been published with."""
    await asyncio.to_thread(migrate.upgrade)
    at = datetime(2026, 11, 24, 2, 0, 0, 123456, tzinfo=UTC)
    engine = create_async_engine(scratch_database)
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(SatkerRecord.__table__),  # type: ignore[attr-defined]
            [
                {
                    "id": "pn-scratch",
                    "name": "PN Scratch",
                    "timezone": "Asia/Jakarta",
                    "created_at": at,
                }
            ],
        )
        await connection.execute(
            sa.insert(InstanceRecord.__table__),  # type: ignore[attr-defined]
            [
                {
                    "id": "i-1",
                    "satker_id": "pn-scratch",
                    "sop_code": "wifi-internet",
                    "sop_version": 1,
                    "title": "WiFi",
                    "context": {},
                    "status": "active",
                    "version": 1,
                    "started_at": at,
                    "created_by": "u",
                    "event_count": 1,
                    "head_hash": "h",
                }
            ],
        )
        event_id: int = (
            await connection.execute(
                sa.insert(AuditEventRecord.__table__).returning(sa.column("id")),  # type: ignore[attr-defined]
                {
                    "instance_id": "i-1",
                    "seq": 1,
                    "type": "instance.started",
                    "actor": "u",
                    "occurred_at": at,
                    "task_id": None,
                    "data": {"before": None, "after": {"status": "active"}},
                    "prev_hash": "0" * 64,
                    "hash": "h",
                },
            )
        ).scalar_one()
        await connection.execute(
            sa.insert(OutboxRecord.__table__),  # type: ignore[attr-defined]
            {
                "event_id": event_id,
                "satker_id": "pn-scratch",
                "type": "instance.started",
                "payload": sa.null(),
                "created_at": at,
            },
        )
    await engine.dispose()

    await asyncio.to_thread(migrate.downgrade, "0006")
    engine = create_async_engine(scratch_database)
    async with engine.connect() as connection:
        payload = (await connection.execute(sa.text("SELECT payload FROM outbox"))).scalar_one()
    await engine.dispose()
    if isinstance(payload, str):  # SQLite's JSON comes back as text through a bare query
        payload = json.loads(payload)
    assert payload == {
        "id": f"evt_{event_id}",
        "type": "instance.started",
        "occurred_at": "2026-11-24T02:00:00.123456+00:00",
        "satker": "pn-scratch",
        "instance_id": "i-1",
        "sop": "wifi-internet",
        "task_id": None,
        "actor": "u",
        "data": {"before": None, "after": {"status": "active"}},
    }
    await asyncio.to_thread(migrate.upgrade)


async def test_instance_pages_keep_room_for_in_place_updates(scratch_database: str) -> None:
    """0007 gives `instance` a fill factor on PostgreSQL (HOT updates); down, it is reset."""
    if not scratch_database.startswith("postgresql"):
        pytest.skip("a PostgreSQL storage parameter")

    async def options() -> list[str] | None:
        engine = create_async_engine(scratch_database)
        async with engine.connect() as connection:
            found = await connection.execute(
                sa.text("SELECT reloptions FROM pg_class WHERE relname = 'instance'")
            )
            value = found.scalar_one()
        await engine.dispose()
        return list(value) if value is not None else None

    await asyncio.to_thread(migrate.upgrade)
    assert await options() == ["fillfactor=85"]
    await asyncio.to_thread(migrate.downgrade, "0006")
    assert await options() is None


async def _secrets(url: str) -> dict[str, str | None]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        subscription = (
            await connection.execute(
                sa.text("SELECT secret, previous_secret FROM webhook_subscription")
            )
        ).one()
        source = (await connection.execute(sa.text("SELECT secret FROM hook_source"))).one()
    await engine.dispose()
    return {
        "secret": subscription[0],
        "previous_secret": subscription[1],
        "source": source[0],
    }


async def test_secrets_stored_in_plaintext_are_sealed_and_can_be_resealed(
    scratch_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = new_key(), new_key()
    monkeypatch.setenv("ALUR_SECRETS__KEYS", old)
    get_settings.cache_clear()
    await asyncio.to_thread(migrate.upgrade, "0007")
    at = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    engine = create_async_engine(scratch_database)
    async with engine.begin() as connection:
        await connection.execute(
            sa.text(
                "INSERT INTO webhook_subscription (id, satker_id, url, event_types, active, "
                "description, secret, previous_secret, created_by, created_at, updated_at) "
                "VALUES ('s-1', 'pn-tais', 'https://example.org/hook', '[]', true, '', "
                "'whsec_current', 'whsec_previous', 'u', :at, :at)"
            ),
            {"at": at},
        )
        await connection.execute(
            sa.text(
                "INSERT INTO hook_source (name, kind, satkers, description, secret, created_by, "
                "created_at) VALUES ('satgas', 'sipp-upgrade', '[]', '', 'whsec_source', 'u', :at)"
            ),
            {"at": at},
        )
    await engine.dispose()
    plain = {
        "secret": "whsec_current",
        "previous_secret": "whsec_previous",
        "source": "whsec_source",
    }

    await asyncio.to_thread(migrate.upgrade)
    sealed = await _secrets(scratch_database)
    assert all(value is not None and value.startswith("fernet:") for value in sealed.values())
    assert {name: unseal(value or "") for name, value in sealed.items()} == plain

    # A new key in front, then `alur secrets reseal`: the old key can go.
    environment = {**os.environ, "ALUR_SECRETS__KEYS": f"{new},{old}"}
    done = await asyncio.to_thread(
        subprocess.run,
        [str(Path(sys.executable).with_name("alur")), "secrets", "reseal"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "2 subscription(s) and source(s)" in done.stdout
    resealed = await _secrets(scratch_database)
    only_new = MultiFernet([Fernet(new)])
    assert {name: unseal(value or "", only_new) for name, value in resealed.items()} == plain

    monkeypatch.setenv("ALUR_SECRETS__KEYS", f"{new},{old}")
    get_settings.cache_clear()
    await asyncio.to_thread(migrate.downgrade, "0007")
    assert await _secrets(scratch_database) == plain
