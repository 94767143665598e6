"""The audit trail raises no false alarm: whatever valid input an instance is given,
its trail verifies.

Arbitrary starts (titles, contexts of nested JSON, `started_at` at any offset in the
past few years), transitions (notes, evidence, outcomes), comments, assignments and
cancellations go through the real API; then both verifications run on what was stored:
`GET /v1/instances/{id}/audit` and the one `alur audit verify` uses.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.catalog.loader import load_catalog
from services.core.db import session_factory, unit_of_work
from services.core.engine.definition import StepKind
from services.core.identity.tokens import issue_token
from services.core.instances.service import verify_stored
from services.core.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.both_paths

CATALOG = load_catalog(PROJECT_ROOT / "sop_catalog")
# Every lane and admin, so that any open task can be acted on (automated steps aside).
ROLES = sorted({role.id for role in CATALOG.roles} | {"admin"})
SOPS = sorted(
    (sop.code, entry)
    for sop in CATALOG.sops
    if all(step.kind != StepKind.AUTOMATED for step in sop.steps)
    for entry in sop.entry_points
)

SUB = "property@pn-tais"
# What a sane API accepts as text: any character but NUL and unpaired surrogates.
characters = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")


def text(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(characters, min_size=min_size, max_size=max_size)


def filled(max_size: int) -> st.SearchStrategy[str]:
    """Text a required field accepts: not blank."""
    return text(1, max_size).filter(str.strip)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text(), inner, max_size=4),
    max_leaves=12,
)
contexts = st.dictionaries(text(), json_values, max_size=5)
# Whole-minute offsets: what ISO 8601 writes (`+07:00`, `-03:30`).
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


# Fixed when the module loads, so that a failing example replays as it first ran.
NOW = datetime.now(UTC).replace(tzinfo=None)


@st.composite
def started_ats(draw: st.DrawFn) -> datetime:
    """Within the past three years, at any offset."""
    instant = draw(
        st.datetimes(min_value=NOW - timedelta(days=3 * 365), max_value=NOW - timedelta(minutes=1))
    )
    return instant.replace(tzinfo=UTC).astimezone(draw(offsets))


class Api:
    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.http, self.headers = http, headers

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(path, json=body, headers=self.headers)
        assert response.status_code in (200, 201), (path, body, response.text)
        document: dict[str, Any] = response.json()
        return document

    async def get(self, path: str) -> dict[str, Any]:
        response = await self.http.get(path, headers=self.headers)
        assert response.status_code == 200, (path, response.text)
        document: dict[str, Any] = response.json()
        return document


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    sop=st.sampled_from(SOPS),
    title=filled(300),
    context=contexts,
    started_at=st.none() | started_ats(),
    actor_name=st.none() | text(1, 100),
    data=st.data(),
)
async def test_every_accepted_input_verifies(
    app: FastAPI,
    engine: AsyncEngine,
    settings: Settings,
    sop: tuple[str, str],
    title: str,
    context: dict[str, Any],
    started_at: datetime | None,
    actor_name: str | None,
    data: st.DataObject,
) -> None:
    token = issue_token(
        settings.auth,
        sub=SUB,
        roles=ROLES,
        satker="pn-tais",
        name=actor_name,
        ttl=timedelta(minutes=5),
        now=datetime.now(UTC),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://alur.test") as http:
        api = Api(http, {"Authorization": f"Bearer {token}"})
        start: dict[str, Any] = {
            "sop": sop[0],
            "entry_point": sop[1],
            "title": title,
            "context": context,
        }
        if started_at is not None:
            start["started_at"] = started_at.isoformat()
        instance = await api.post("/v1/instances", start)
        path = f"/v1/instances/{instance['id']}"
        try:
            for _ in range(data.draw(st.integers(0, 6), label="commands")):
                if instance["status"] != "active":
                    break
                instance = await _command(api, path, instance, data)
        finally:
            # Ended, so that no deadline of it falls due in another test's sweep; also
            # when hypothesis abandons the example half-way (a draw it could not make).
            if instance["status"] == "active":
                cancelled = await http.post(
                    f"{path}/cancel", json={"reason": "diuji"}, headers=api.headers
                )
                instance = cancelled.json()

        read = await api.get(path)
        assert read["title"] == title
        assert _same_json(read["context"], context), read["context"]
        if started_at is not None:
            assert datetime.fromisoformat(read["started_at"]) == started_at
        report = await api.get(f"{path}/audit")
        assert report["valid"] is True, report["problems"]
    async with unit_of_work(session_factory(engine)) as session:
        checked, broken = await verify_stored(session, [instance["id"]])
    assert (checked, broken) == (1, [])


async def _command(
    api: Api, path: str, instance: dict[str, Any], data: st.DataObject
) -> dict[str, Any]:
    # In step order: tasks opened at once are listed by their (random) ids.
    open_tasks = sorted(
        (task for task in instance["tasks"] if task["status"] == "open"),
        key=lambda task: task["step_number"],
    )
    # A task assigned to someone else is theirs to complete.
    ours = [task for task in open_tasks if task["assignee"] in (None, SUB)]
    kinds = ["comment", "cancel"] + ["assign"] * bool(open_tasks) + ["transition"] * 3 * bool(ours)
    kind = data.draw(st.sampled_from(kinds), label="command")
    if kind == "comment":
        body: dict[str, Any] = {"text": data.draw(filled(200), label="comment")}
        on_a_task: bool = data.draw(st.booleans(), label="on a task")
        if open_tasks and on_a_task:
            body["task"] = data.draw(st.sampled_from(open_tasks))["id"]
        return await api.post(f"{path}/comments", body)
    if kind == "cancel":
        return await api.post(f"{path}/cancel", {"reason": data.draw(filled(200), label="reason")})
    if kind == "assign":
        task = data.draw(st.sampled_from(open_tasks), label="task")
        assignee = data.draw(st.just(SUB) | filled(200), label="assignee")
        return await api.post(f"/v1/tasks/{task['id']}/assign", {"assignee": assignee})
    task = data.draw(st.sampled_from(ours), label="task")
    # Recording an outside party's step takes evidence or a note.
    evidence = st.lists(text(0, 80), min_size=int(task["kind"] == "external"), max_size=3)
    body = {
        "task": task["id"],
        "note": data.draw(st.none() | text(0, 300), label="note"),
        "evidence": data.draw(evidence, label="evidence"),
    }
    if task["outcomes"]:
        body["outcome"] = data.draw(st.sampled_from(task["outcomes"]), label="outcome")
    return await api.post(f"{path}/transitions", body)


def _same_json(read: Any, sent: Any) -> bool:
    """The same JSON values: numbers as the same number (PostgreSQL's `jsonb` gives
    `1.809199203336677e16` back as `18091992033366770`, the same decimal, and `-0.0` as
    `0.0`), everything else exactly."""
    if isinstance(sent, dict):
        return (
            isinstance(read, dict)
            and read.keys() == sent.keys()
            and all(_same_json(read[key], value) for key, value in sent.items())
        )
    if isinstance(sent, list):
        return (
            isinstance(read, list)
            and len(read) == len(sent)
            and all(_same_json(a, b) for a, b in zip(read, sent, strict=True))
        )
    if isinstance(sent, float):
        return type(read) in (int, float) and float(read) == sent
    return type(read) is type(sent) and read == sent
