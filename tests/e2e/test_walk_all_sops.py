"""Every SOP of the catalog, from every entry point, along every path, through the HTTP API.

The paths are derived from the catalog, never written down, so a SOP added or edited in
`sop_catalog/` is walked without touching this file.

How the paths are enumerated: a walk follows `next` at a plain step and tries each
outcome at a branching step (a decision, or an automated step with outcomes). Each
(step, outcome) pair is taken at most once per walk, so a loop back to an earlier step
is walked once and the walk then has to leave the loop by another outcome; a branch
whose outcomes are all used up is dropped, as is a run of plain steps that comes back
on itself (it could never end). Plain `next` edges may repeat: after a loop, the steps
between the loop's target and its decision are done again, as people would redo them.
`test_walks_cover_every_step_and_outcome` proves the enumeration reaches everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.core.catalog.loader import load_catalog
from services.core.engine.definition import Catalog, SopDefinition, Step, StepKind
from services.core.engine.state import ADMIN_ROLE
from services.core.settings import Settings
from tests.support import TokenFactory

PROBLEM = "application/problem+json"
SATKER = "pn-tais"


@dataclass(frozen=True)
class Move:
    """Completing one task: the step, the outcome chosen there, and the step that follows."""

    step: Step
    outcome: str | None
    then: str | None


@dataclass(frozen=True)
class Walk:
    sop: SopDefinition
    entry_point: str
    moves: tuple[Move, ...]

    @property
    def id(self) -> str:
        outcomes = [move.outcome for move in self.moves if move.outcome is not None]
        return f"{self.sop.code}/{self.entry_point}/{'-'.join(outcomes) or 'straight'}"


def _moves_from(
    sop: SopDefinition,
    step_id: str,
    taken: frozenset[tuple[str, str]],
    since_choice: frozenset[str],
) -> Iterator[tuple[Move, ...]]:
    if step_id in since_choice:
        return
    step = sop.step(step_id)
    if step.outcomes is None:
        move = Move(step, None, step.next)
        if step.next is None:
            yield (move,)
            return
        for rest in _moves_from(sop, step.next, taken, since_choice | {step_id}):
            yield (move, *rest)
        return
    for outcome, target in step.outcomes.items():
        if (step.id, outcome) in taken:
            continue
        move = Move(step, outcome, target)
        if target is None:
            yield (move,)
            continue
        for rest in _moves_from(sop, target, taken | {(step.id, outcome)}, frozenset()):
            yield (move, *rest)


def enumerate_walks(sop: SopDefinition) -> list[Walk]:
    return [
        Walk(sop, entry, moves)
        for entry in sop.entry_points
        for moves in _moves_from(sop, entry, frozenset(), frozenset())
    ]


def _reachable(sop: SopDefinition, entry: str) -> set[str]:
    seen: set[str] = set()
    pending = [entry]
    while pending:
        step_id = pending.pop()
        if step_id not in seen:
            seen.add(step_id)
            pending.extend(sop.step(step_id).successors)
    return seen


def _acting_role(step: Step) -> str:
    """The internal role that completes `step`: its lane, or the owner who records it."""
    if step.kind is StepKind.EXTERNAL:
        assert step.owner is not None, f"external step {step.id} has no owner"
        return step.owner
    return step.lane


def _other_internal_role(catalog: Catalog, sop: SopDefinition, step: Step) -> str:
    """An internal role that may not complete `step`, preferring a colleague in the same SOP."""
    acting = {step.lane, _acting_role(step)}
    internal = [role.id for role in catalog.roles if not role.external and role.id != ADMIN_ROLE]
    colleagues = [lane for lane in sop.lanes if lane in internal and lane not in acting]
    return (colleagues or [role for role in internal if role not in acting])[0]


# Parametrising needs the catalog at collection time, before fixtures exist; the
# coverage test checks that the app under test is configured with the same directory.
CATALOG_PATH = Settings().catalog.path
CATALOG = load_catalog(CATALOG_PATH)
WALKS = [walk for sop in CATALOG.sops for walk in enumerate_walks(sop)]


def _token(auth_headers: TokenFactory, role: str) -> dict[str, str]:
    # One principal per lane, so every lane check runs against a token of that lane only.
    return auth_headers([role], satker=SATKER, sub=f"{role}@{SATKER}")


def _open_task(instance: dict[str, Any], step: Step) -> dict[str, Any]:
    (task,) = [t for t in instance["tasks"] if t["status"] == "open"]
    assert (task["step_id"], task["lane"], task["kind"], task["owner"]) == (
        step.id,
        step.lane,
        step.kind.value,
        step.owner,
    )
    assert task["outcomes"] == (list(step.outcomes) if step.outcomes is not None else None)
    return dict(task)


async def _start(
    client: httpx.AsyncClient, headers: dict[str, str], sop: SopDefinition, entry: str
) -> dict[str, Any]:
    response = await client.post(
        "/v1/instances",
        json={"sop": sop.code, "title": f"Uji {sop.code} dari {entry}", "entry_point": entry},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    instance = dict(response.json())
    assert (instance["sop"], instance["sop_version"]) == (sop.code, sop.version)
    assert (instance["status"], instance["version"]) == ("active", 1)
    assert instance["current_steps"] == [entry]
    return instance


def _transition_body(task: dict[str, Any], move: Move) -> dict[str, Any]:
    body: dict[str, Any] = {"task": task["id"]}
    if move.outcome is not None:
        body["outcome"] = move.outcome
    if move.step.kind is StepKind.EXTERNAL:
        # Recording what an outside party did needs a note or evidence.
        body["note"] = f"{move.step.lane} menyelesaikan {move.step.id}"
    return body


def test_walks_cover_every_step_and_outcome(settings: Settings) -> None:
    assert settings.catalog.path.resolve() == CATALOG_PATH.resolve()
    assert CATALOG.sops, "the catalog has no SOP"
    branching_outcomes = 0
    entries = 0
    for sop in CATALOG.sops:
        for entry in sop.entry_points:
            entries += 1
            walks = [walk for walk in WALKS if walk.sop is sop and walk.entry_point == entry]
            assert walks, f"{sop.code}: no walk from {entry} reaches an end"
            reachable = _reachable(sop, entry)
            walked = {move.step.id for walk in walks for move in walk.moves}
            assert walked == reachable, f"{sop.code}/{entry}: not walked {reachable - walked}"
            branching = [sop.step(s) for s in reachable if sop.step(s).outcomes is not None]
            expected = {(step.id, label) for step in branching for label in step.outcomes or {}}
            chosen = {
                (move.step.id, move.outcome)
                for walk in walks
                for move in walk.moves
                if move.outcome is not None
            }
            assert chosen == expected, f"{sop.code}/{entry}: not chosen {expected - chosen}"
            for walk in walks:
                assert walk.moves[0].step.id == entry
                assert walk.moves[-1].then is None
        branching_outcomes += sum(
            len(step.outcomes) - 1 for step in sop.steps if step.outcomes is not None
        )
    # A path per entry point, plus one more for every outcome beyond a step's first.
    assert len(WALKS) >= entries + branching_outcomes >= len(CATALOG.sops) + branching_outcomes
    assert len({walk.id for walk in WALKS}) == len(WALKS)


@pytest.mark.parametrize("walk", [pytest.param(walk, id=walk.id) for walk in WALKS])
async def test_walk(client: httpx.AsyncClient, auth_headers: TokenFactory, walk: Walk) -> None:
    first = walk.moves[0].step
    starter = _token(auth_headers, _acting_role(first))
    instance = await _start(client, starter, walk.sop, walk.entry_point)

    completed: list[str] = []
    for move in walk.moves:
        task = _open_task(instance, move.step)
        response = await client.post(
            f"/v1/instances/{instance['id']}/transitions",
            json=_transition_body(task, move),
            headers={
                **_token(auth_headers, _acting_role(move.step)),
                "If-Match": f'"{instance["version"]}"',
            },
        )
        assert response.status_code == 200, f"{move.step.id}: {response.text}"
        after = dict(response.json())
        assert after["version"] == instance["version"] + 1
        assert response.headers["etag"] == f'"{after["version"]}"'
        assert after["current_steps"] == ([move.then] if move.then is not None else [])
        assert after["status"] == ("active" if move.then is not None else "completed")
        done = next(t for t in after["tasks"] if t["id"] == task["id"])
        assert (done["status"], done["outcome"]) == ("completed", move.outcome)
        completed.append(task["id"])
        instance = after

    assert instance["status"] == "completed"
    assert instance["ended_at"] is not None
    # A loop back opens a new task for the earlier step: one task per step walked.
    assert [t["id"] for t in instance["tasks"]] == completed

    events = await client.get(f"/v1/instances/{instance['id']}/events", headers=starter)
    assert events.status_code == 200, events.text
    items = events.json()["items"]
    types = [item["type"] for item in items]
    assert types[0] == "instance.started"
    assert types[-1] == "instance.completed"
    assert [item["seq"] for item in items] == list(range(1, len(items) + 1))
    assert [i["task_id"] for i in items if i["type"] == "task.completed"] == completed
    assert types.count("task.opened") == len(walk.moves)

    audit = await client.get(f"/v1/instances/{instance['id']}/audit", headers=starter)
    assert audit.status_code == 200, audit.text
    assert audit.json() == {
        "instance_id": instance["id"],
        "valid": True,
        "events": len(items),
        "problems": [],
    }


@pytest.mark.parametrize("sop", [pytest.param(sop, id=sop.code) for sop in CATALOG.sops])
async def test_another_lane_may_not_complete_the_first_task(
    client: httpx.AsyncClient, auth_headers: TokenFactory, sop: SopDefinition
) -> None:
    entry = sop.entry_points[0]
    first = sop.step(entry)
    instance = await _start(client, _token(auth_headers, _acting_role(first)), sop, entry)
    task = _open_task(instance, first)
    # The body is otherwise valid (outcome, note), so only the role can be what is refused.
    outcome = next(iter(first.outcomes)) if first.outcomes else None
    body = _transition_body(task, Move(first, outcome, None))
    other = _other_internal_role(CATALOG, sop, first)

    response = await client.post(
        f"/v1/instances/{instance['id']}/transitions",
        json=body,
        headers=_token(auth_headers, other),
    )

    assert response.status_code == 403, f"{other} on {first.id}: {response.text}"
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "lane_forbidden"
    unchanged = await client.get(
        f"/v1/instances/{instance['id']}", headers=_token(auth_headers, _acting_role(first))
    )
    assert unchanged.status_code == 200, unchanged.text
    assert (unchanged.json()["version"], unchanged.json()["current_steps"]) == (1, [entry])
