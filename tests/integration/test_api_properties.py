"""Property-based API tests: schemathesis sends requests made from the OpenAPI document
(valid ones, boundary values, and invalid ones) to the real app, in-process.

Every operation must answer without a server error. The caller holds every role that
changes something, in a satker of its own, so requests get past 401/403 and what they
create stays out of the other tests' satkers. Bounded: a few examples per operation,
derandomized (the same cases on every run), no example database.

Checked: no server error, and every answer the document declares matches its schema.
`PENDING_CHECKS` (every status and media type answered is declared) wait for the
document to declare the problem responses of every route: set
`ALUR_TEST_SCHEMA_CHECKS=1` to run them now.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.python import asgi
from schemathesis.specs.openapi import checks as openapi_checks

from services.api.app import create_app
from services.core.settings import Settings
from tests.conftest import TokenFactory

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

# No 5xx, and every answer the document declares has the declared shape.
CHECKS = [checks.not_a_server_error, openapi_checks.response_schema_conformance]
# Every status and media type answered is declared: not yet (422/400/401/413 answers
# and problem+json are missing on some routes). Switched on by ALUR_TEST_SCHEMA_CHECKS=1
# until the document declares them; then they belong in CHECKS.
PENDING_CHECKS = [openapi_checks.status_code_conformance, openapi_checks.content_type_conformance]
if os.environ.get("ALUR_TEST_SCHEMA_CHECKS"):
    CHECKS += PENDING_CHECKS


@pytest.fixture(scope="module")
async def running_app(app: FastAPI, auth_headers: TokenFactory) -> AsyncIterator[FastAPI]:
    """A second app on the same database, started by schemathesis in its own event loop
    (the test calls it synchronously), with a satker of its own for what it creates."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://alur.test") as http:
        response = await http.post(
            "/v1/satkers",
            json={"id": SATKER, "name": "Uji sifat API"},
            headers=auth_headers(["admin"]),
        )
    assert response.status_code == 201, response.text
    yield create_app(app.state.context.settings)
    asgi.shutdown_lifespans()


@schema.parametrize()
@settings(
    # Generous: a hang fails, a busy machine does not.
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_errors(case: Any, running_app: FastAPI, auth_headers: TokenFactory) -> None:
    headers = auth_headers(ROLES, satker=SATKER)
    case.call_and_validate(app=running_app, headers=headers, checks=CHECKS)
