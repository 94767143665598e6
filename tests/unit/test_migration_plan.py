"""The migration plan and move, without a database."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.core.engine.definition import SopDefinition
from services.core.engine.migration import (
    MigrationForbidden,
    MigrationRefused,
    SameVersion,
    migrate,
    plan,
)
from services.core.engine.state import InstanceMigrated, TaskStatus
from tests.unit.machine_cases import ADMIN, STAF, SURAT, walk


def _newer(**renames: str) -> SopDefinition:
    steps = tuple(
        step.model_copy(update={"id": renames.get(step.id, step.id)}) for step in SURAT.steps
    )
    return SURAT.model_copy(update={"version": SURAT.version + 1, "steps": steps})


def test_identical_steps_move_as_they_are() -> None:
    snapshot = walk([])
    planned = plan(snapshot, SURAT, _newer(), {})
    assert planned.allowed
    assert {move.verdict for move in planned.moves} == {"same"}
    decision = migrate(snapshot, SURAT, _newer(), ADMIN, {})
    assert decision.state.sop_version == SURAT.version + 1
    assert decision.state.version == snapshot.version + 1
    assert decision.effects == (
        InstanceMigrated(from_version=SURAT.version, to_version=SURAT.version + 1, moves=()),
    )


def test_a_renamed_step_needs_a_mapping() -> None:
    snapshot = walk([])
    first = snapshot.tasks[0].step_id
    newer = _newer(**{first: f"{first}_baru"})
    refused = plan(snapshot, SURAT, newer, {})
    assert not refused.allowed
    assert refused.moves[0].verdict == "no_step"
    with pytest.raises(MigrationRefused):
        migrate(snapshot, SURAT, newer, ADMIN, {})
    decision = migrate(snapshot, SURAT, newer, ADMIN, {first: f"{first}_baru"})
    assert decision.state.tasks[0].step_id == f"{first}_baru"
    assert decision.effects[0].moves == (  # type: ignore[union-attr]
        {"task_id": snapshot.tasks[0].id, "from_step": first, "to_step": f"{first}_baru"},
    )


def test_a_cancelled_task_without_a_step_stays() -> None:
    snapshot = walk([])
    cancelled = replace(snapshot.tasks[0], status=TaskStatus.CANCELLED)
    snapshot = replace(snapshot, tasks=(cancelled, *snapshot.tasks[1:]))
    newer = _newer(**{cancelled.step_id: "lain"})
    planned = plan(snapshot, SURAT, newer, {})
    assert planned.moves[0].verdict == "left"


def test_map_entries_must_name_steps_of_both_versions() -> None:
    snapshot = walk([])
    first = snapshot.tasks[0].step_id
    planned = plan(snapshot, SURAT, _newer(), {"tidak_ada": first, first: "juga_tidak"})
    assert len(planned.problems) >= 2


def test_who_and_when() -> None:
    snapshot = walk([])
    with pytest.raises(MigrationForbidden):
        migrate(snapshot, SURAT, _newer(), STAF, {})
    with pytest.raises(SameVersion):
        plan(snapshot, SURAT, SURAT, {})
