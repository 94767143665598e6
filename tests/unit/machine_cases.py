"""What the state machine's tests share: a small synthetic SOP exercising every step kind
(task, decision with a loop, external, automated, end), the real SOP 10 from the catalog,
actors, and helpers that drive the pure `decide`. Deadlines come from a naive fake: the
machine must not care how working time is counted, only that it asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from services.core.engine.definition import Role, SopDefinition, TimeStandard
from services.core.engine.machine import decide
from services.core.engine.state import (
    SYSTEM_WORKER,
    Actor,
    Cancel,
    Claim,
    Command,
    CompleteTask,
    Decision,
    InstanceState,
    RecordExternal,
    Start,
)

CATALOG = Path(__file__).resolve().parents[2] / "sop_catalog"
T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
NEXT_IDS = ("n1", "n2")


def _load_yaml(name: str) -> Any:
    return YAML(typ="safe").load((CATALOG / name).read_text(encoding="utf-8"))


def _sop(**overrides: object) -> SopDefinition:
    body: dict[str, object] = {
        "code": "surat-keluar",
        "number": 99,
        "title": "Surat keluar (synthetic)",
        "version": 3,
        "legal_basis": [],
        "related": [],
        "warning": "-",
        "qualifications": [],
        "equipment": [],
        "records": [],
        "lanes": ["staf", "kasubbag", "pt"],
        "time_standard": {"source_text": "5 hari", "min": "P5D", "max": "P5D"},
        "entry_points": ["draft", "review"],
        "steps": [
            {
                "id": "draft",
                "number": 1,
                "activity": "Menyusun konsep",
                "lane": "staf",
                "kind": "task",
                "time_standard": {"source_text": "4 jam", "min": "PT4H", "max": "PT4H"},
                "next": "review",
            },
            {
                "id": "review",
                "number": 2,
                "activity": "Memeriksa konsep",
                "lane": "kasubbag",
                "kind": "decision",
                "time_standard": {"source_text": "15-30 menit", "min": "PT15M", "max": "PT30M"},
                "outcomes": {"setuju": "kirim", "revisi": "draft", "tolak": None},
            },
            {
                "id": "kirim",
                "number": 3,
                "activity": "Pengadilan Tinggi menerima surat",
                "lane": "pt",
                "kind": "external",
                "owner": "staf",
                "time_standard": {
                    "source_text": "3 hari",
                    "min": "P3D",
                    "max": "P3D",
                    "basis": "calendar",
                },
                "next": "arsip",
            },
            {
                "id": "arsip",
                "number": 4,
                "activity": "Mengarsipkan otomatis",
                "lane": "staf",
                "kind": "automated",
                "job": "arsip_job",
            },
        ],
    }
    body.update(overrides)
    return SopDefinition.model_validate(body)


SURAT = _sop()
SOP10 = SopDefinition.model_validate(_load_yaml("10-monitoring-sinkronisasi-backup-sipp.yaml"))
SYNTHETIC_ROLES = {
    role.id: role
    for role in (
        Role(id="staf", name="Staf", reports_to="kasubbag"),
        Role(id="kasubbag", name="Kasubbag", reports_to="sekretaris"),
        Role(id="sekretaris", name="Sekretaris", reports_to="ketua"),
        Role(id="ketua", name="Ketua"),
        Role(id="admin", name="Admin"),
        Role(id="pt", name="Pengadilan Tinggi", external=True),
        Role(id="umum", name="Umum", reports_to="sekretaris"),
    )
}
REAL_ROLES = {
    role.id: role for role in (Role.model_validate(r) for r in _load_yaml("roles.yaml")["roles"])
}


def make_actor(sub: str, *roles: str, satker: str = "pn-tais") -> Actor:
    return Actor(sub=sub, roles=frozenset(roles), satker=satker, name=sub.title())


STAF = make_actor("u-staf", "staf")
STAF2 = make_actor("u-staf2", "staf")
KASUBBAG = make_actor("u-kasubbag", "kasubbag")
SEKRETARIS = make_actor("u-sekretaris", "sekretaris")
ADMIN = make_actor("u-admin", "admin")
PT = make_actor("u-pt", "pt", satker="pt-bengkulu")
UMUM = make_actor("u-umum", "umum")
WORKER = make_actor(SYSTEM_WORKER)
# Roles do not make the worker a person: it may still only complete automated steps.
WORKER_WITH_ROLES = make_actor(SYSTEM_WORKER, "staf", "kasubbag", "admin")
STAF_TI = make_actor("u-ti", "staf_ti")


def naive_deadlines(standard: TimeStandard, opened: datetime) -> tuple[datetime, datetime]:
    def span(text: str) -> timedelta:
        duration = TimeStandard.model_validate(
            {"source_text": "-", "min": text, "max": text}
        ).min_duration
        return timedelta(days=duration.days, seconds=duration.seconds)

    return opened + span(standard.min), opened + span(standard.max)


def run(
    snapshot: InstanceState | None,
    command: Command,
    *,
    definition: SopDefinition = SURAT,
    now: datetime = T1,
) -> Decision:
    roles = SYNTHETIC_ROLES if definition is SURAT else REAL_ROLES
    return decide(definition, snapshot, command, now, deadlines=naive_deadlines, roles=roles)


def tid(state: InstanceState | None, step_id: str) -> str:
    """The id of the latest task of `step_id` (the open one after a loop)."""
    assert state is not None
    return [task.id for task in state.tasks if task.step_id == step_id][-1]


def fresh_ids(state: InstanceState) -> tuple[str]:
    return (f"t{len(state.tasks) + 1}",)


@dataclass(frozen=True)
class Act:
    step_id: str
    actor: Actor
    outcome: str | None = None
    record: bool = False


def act(state: InstanceState, step: Act, definition: SopDefinition = SURAT) -> Decision:
    task_id = tid(state, step.step_id)
    command: Command
    if step.record:
        command = RecordExternal(
            actor=step.actor,
            task_id=task_id,
            note="surat diterima",
            outcome=step.outcome,
            new_task_ids=fresh_ids(state),
        )
    else:
        command = CompleteTask(
            actor=step.actor, task_id=task_id, outcome=step.outcome, new_task_ids=fresh_ids(state)
        )
    return run(state, command, definition=definition)


def walk(
    acts: list[Act],
    *,
    definition: SopDefinition = SURAT,
    entry: str | None = None,
    actor: Actor = STAF,
) -> InstanceState:
    start = Start(actor=actor, instance_id="i1", entry_point=entry, new_task_ids=("t1",))
    state = run(None, start, definition=definition, now=T0).state
    for step in acts:
        state = act(state, step, definition).state
    return state


def _then(state: InstanceState, command: Command) -> InstanceState:
    return run(state, command).state


SCENARIOS: dict[str, Callable[[], InstanceState | None]] = {
    "none": lambda: None,
    "at_draft": lambda: walk([]),
    "at_review": lambda: walk([Act("draft", STAF)]),
    "at_kirim": lambda: walk([Act("draft", STAF), Act("review", KASUBBAG, "setuju")]),
    "at_arsip": lambda: walk(
        [Act("draft", STAF), Act("review", KASUBBAG, "setuju"), Act("kirim", STAF, record=True)]
    ),
    "draft_claimed": lambda: _then(walk([]), Claim(actor=STAF, task_id="t1")),
    "review_claimed": lambda: _then(
        walk([Act("draft", STAF)]), Claim(actor=KASUBBAG, task_id="t2")
    ),
    "completed": lambda: walk([Act("draft", STAF), Act("review", KASUBBAG, "tolak")]),
    "cancelled": lambda: _then(walk([]), Cancel(actor=KASUBBAG, reason="salah buat")),
}

CommandFor = Callable[[InstanceState | None], Command]
