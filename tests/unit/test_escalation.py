"""Deadline notices in the pure engine: warn, overdue, escalate level by level, once each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.core.engine.definition import Role, SopDefinition
from services.core.engine.errors import LaneForbidden, NothingDue, TaskNotOpen
from services.core.engine.machine import decide
from services.core.engine.state import (
    Actor,
    CompleteTask,
    Escalate,
    Flag,
    InstanceState,
    Start,
    TaskState,
)

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 08:00 WIB
WORKER = Actor(sub="system:worker", satker="pn-tais")
STAF = Actor(sub="budi", roles=frozenset({"staf_ti"}), satker="pn-tais")
ROLES = {
    role.id: role
    for role in (
        Role(id="staf_ti", name="Staf TI", reports_to="kasubbag_ptip"),
        Role(id="kasubbag_ptip", name="Kasubbag", reports_to="sekretaris"),
        Role(id="sekretaris", name="Sekretaris", reports_to="ketua"),
        Role(id="ketua", name="Ketua"),
        Role(id="pt", name="Pengadilan Tinggi", external=True),
    )
}
TIME = {"source_text": "4 jam", "min": "PT4H", "max": "PT4H", "basis": "working"}
DEFINITION = SopDefinition.model_validate(
    {
        "code": "uji",
        "number": 99,
        "title": "Uji",
        "version": 1,
        "legal_basis": [],
        "related": [],
        "warning": "-",
        "qualifications": [],
        "equipment": [],
        "records": [],
        "lanes": ["staf_ti", "pt"],
        "time_standard": {"source_text": "1 hari", "min": "P1D", "max": "P1D"},
        "entry_points": ["kerja"],
        "steps": [
            {"id": "kerja", "number": 1, "activity": "Kerja", "lane": "staf_ti",
             "kind": "task", "time_standard": TIME, "next": "kirim"},
            {"id": "kirim", "number": 2, "activity": "Kirim", "lane": "pt",
             "kind": "external", "owner": "staf_ti", "time_standard": TIME},
        ],
    }
)  # fmt: skip
WARN, DUE = T0 + timedelta(hours=3), T0 + timedelta(hours=4)
# Level 1 at the due date, level 2 at 2x, level 3 at 3x (the caller's calendar math).
LEVELS = (DUE, T0 + timedelta(hours=8), T0 + timedelta(hours=12))


def _deadlines(_standard: object, opened: datetime) -> tuple[datetime, datetime]:
    return opened + timedelta(hours=3), opened + timedelta(hours=4)


def _started() -> InstanceState:
    return decide(
        DEFINITION,
        None,
        Start(actor=STAF, instance_id="i1", new_task_ids=["t1"]),
        T0,
        deadlines=_deadlines,
        roles=ROLES,
    ).state


def _escalate(state: InstanceState, at: datetime, task_id: str | None = "t1"):  # type: ignore[no-untyped-def]
    return decide(
        DEFINITION,
        state,
        Escalate(actor=WORKER, task_id=task_id, thresholds=LEVELS),
        at,
        deadlines=_deadlines,
        roles=ROLES,
    )


def test_a_new_task_is_watched_from_its_warning() -> None:
    task = _started().task("t1")
    assert task is not None
    assert (task.warn_at, task.due_at, task.next_check_at) == (WARN, DUE, WARN)


@pytest.mark.parametrize(
    ("at", "events", "level", "next_check"),
    [
        (WARN, ["task.due_soon"], 0, DUE),
        (DUE, ["task.overdue", "task.escalated"], 1, LEVELS[1]),
        # A sweep that comes late fires every level that fell due, each once.
        (LEVELS[2], ["task.overdue", "task.escalated", "task.escalated", "task.escalated"], 3,
         None),
    ],
)  # fmt: skip
def test_notices_due_at(at: datetime, events: list[str], level: int, next_check: datetime) -> None:
    decision = _escalate(_started(), at)
    assert [effect.event_type for effect in decision.effects] == events
    task = decision.state.task("t1")
    assert task is not None
    assert (task.escalation_level, task.next_check_at) == (level, next_check)
    assert decision.state.version == 2


def test_levels_go_up_the_chain_once_each() -> None:
    state, seen = _started(), []
    for at in (WARN, DUE, LEVELS[1], LEVELS[2]):
        decision = _escalate(state, at)
        seen += [
            (effect.event_type, getattr(effect, "to_role", None)) for effect in decision.effects
        ]
        state = decision.state
        with pytest.raises(NothingDue):
            _escalate(state, at)  # the same sweep again: nothing more
    assert seen == [
        ("task.due_soon", None),
        ("task.overdue", None),
        ("task.escalated", "kasubbag_ptip"),
        ("task.escalated", "sekretaris"),
        ("task.escalated", "ketua"),
    ]
    task = state.task("t1")
    assert task is not None
    assert task.next_check_at is None  # the top of the chain: nobody left to tell


def test_external_steps_are_chased_through_their_owner() -> None:
    state = _started()
    later = T0 + timedelta(hours=1)
    state = decide(
        DEFINITION,
        state,
        CompleteTask(actor=STAF, task_id="t1", new_task_ids=["t2"]),
        later,
        deadlines=_deadlines,
        roles=ROLES,
    ).state
    decision = _escalate(state, later + timedelta(hours=4, minutes=1), task_id="t2")
    escalated = [e for e in decision.effects if e.event_type == "task.escalated"]
    assert [getattr(e, "to_role", None) for e in escalated] == ["kasubbag_ptip"]


def test_procedure_level_deadline_escalates_the_first_lanes_chain() -> None:
    state = InstanceState(**{**_started().__dict__, "due_at": DUE, "next_check_at": DUE})
    decision = _escalate(state, DUE, task_id=None)
    assert [e.event_type for e in decision.effects] == ["instance.overdue", "instance.escalated"]
    assert decision.state.escalation_level == 1


def test_only_the_worker_escalates_and_only_open_tasks() -> None:
    with pytest.raises(LaneForbidden):
        decide(
            DEFINITION,
            _started(),
            Escalate(actor=STAF, task_id="t1", thresholds=LEVELS),
            DUE,
            deadlines=_deadlines,
            roles=ROLES,
        )
    with pytest.raises(TaskNotOpen):
        _escalate(_started(), DUE, task_id="nope")


def test_flag_marks_the_task_for_a_person() -> None:
    decision = decide(
        DEFINITION,
        _started(),
        Flag(actor=WORKER, task_id="t1", reason="backup check failed 5 times"),
        DUE,
        deadlines=_deadlines,
        roles=ROLES,
    )
    task = decision.state.task("t1")
    assert task is not None
    assert task.flag == "backup check failed 5 times"
    assert task.is_open
    assert [e.event_type for e in decision.effects] == ["task.flagged"]


def test_task_state_keeps_no_watch_once_completed() -> None:
    state = _started()
    task = state.task("t1")
    assert isinstance(task, TaskState)

    done = decide(
        DEFINITION,
        state,
        CompleteTask(actor=STAF, task_id="t1", new_task_ids=["t2"]),
        T0,
        deadlines=_deadlines,
        roles=ROLES,
    ).state.task("t1")
    assert done is not None
    assert done.next_check_at is None
