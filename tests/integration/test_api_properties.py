"""Property-based API tests: schemathesis sends requests made from the OpenAPI document
(valid ones, boundary values, and invalid ones) to the real app, in-process.

Every operation must answer without a server error. The caller holds every role that
changes something, so requests get past 401/403; the app runs on a database of its
own. Bounded: a few examples per operation, derandomized (the same cases on every
run), no example database.

Checked: no server error, every status and media type answered is declared by the
document, and every answer has the declared shape.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.python import asgi
from schemathesis.specs.openapi import checks as openapi_checks

from services.api.app import create_app
from services.core import migrate
from services.core.db import create_engine, session_factory, unit_of_work
from services.core.satkers import service as satkers
from services.core.settings import Settings, get_settings
from tests.support import TEST_DATABASE_URL, TokenFactory, create_database, drop_database

SATKER = "uji-sifat"
ROLES = ["admin", "admin_website", "staf_ti", "kasubbag_ptip", "pembuat_artikel"]
MAX_EXAMPLES = 5

# Built from the routes alone: the document does not depend on settings or a database.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())
schema.config.generation.update(
    max_examples=MAX_EXAMPLES, deterministic=True, database="none", unique_inputs=True
)
# The coverage phase sends each boundary value of every field (the largest integer, the
# longest string, U+0000...); its invalid variants are left to the fuzzing phase, which
# sends both kinds: together they would take twice as long.
schema.config.phases.coverage.generation.update(modes=[schemathesis.GenerationMode.POSITIVE])

CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
async def running_app(
    migrated: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    """The app on a database of its own, started by schemathesis in its own event loop
    (the test calls it synchronously; schemathesis ends the app's lifespan after each
    operation's test). Nothing it creates reaches the other tests: generated monitors,
    webhook subscriptions and SIPP configurations name hosts that a later test's worker
    would otherwise try to reach. (It shares the suite's Redis: an embedded one per app
    start outlives its app. What it could enqueue needs rows the generated requests do
    not make: an automated step of a started SOP, a signed hook, a delivery.)"""
    data_dir = tmp_path_factory.mktemp("properties")
    name = None
    if TEST_DATABASE_URL is None:
        url = f"sqlite+aiosqlite:///{data_dir / 'alur.db'}"
    else:
        name = f"alur_properties_{uuid.uuid4().hex[:10]}"
        await create_database(TEST_DATABASE_URL, name)
        url = sa.make_url(TEST_DATABASE_URL).set(database=name).render_as_string(False)
    own = migrated.model_copy(
        update={
            "data_dir": data_dir,
            "database": migrated.database.model_copy(update={"url": url}),
        }
    )
    saved = os.environ["ALUR_DATABASE__URL"]
    os.environ["ALUR_DATABASE__URL"] = url  # what the migrations connect to
    get_settings.cache_clear()
    try:
        await asyncio.to_thread(migrate.upgrade)
    finally:
        os.environ["ALUR_DATABASE__URL"] = saved
        get_settings.cache_clear()
    engine = create_engine(own)
    async with unit_of_work(session_factory(engine)) as session:
        await satkers.create_satker(
            session,
            satker_id=SATKER,
            name="Uji sifat API",
            parent_id=None,
            lane_role=None,
            timezone="Asia/Jakarta",
            now=datetime.now(UTC),
        )
    await engine.dispose()
    yield create_app(own)
    asgi.shutdown_lifespans()
    if name is not None:
        await drop_database(TEST_DATABASE_URL, name)  # type: ignore[arg-type]


@schema.parametrize()
@settings(
    # Generous: a hang fails, a busy machine does not.
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_errors(case: Any, running_app: FastAPI, auth_headers: TokenFactory) -> None:
    headers = auth_headers(ROLES, satker=SATKER)
    case.call_and_validate(app=running_app, headers=headers, checks=CHECKS)
