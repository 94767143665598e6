"""The pure SOP state machine, driven by tables of commands and expected outcomes.

A small synthetic SOP exercises every step kind (task → decision with a loop →
external → automated → end); the real SOP 10 file checks the machine against the
catalog as it is. Deadlines come from a naive fake: the machine must not care how
working time is counted, only that it asks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from services.core.engine.definition import Role, SopDefinition, StepKind, TimeStandard
from services.core.engine.errors import (
    AlreadyClaimed,
    AlreadyStarted,
    DefinitionMismatch,
    DomainError,
    DuplicateTaskId,
    EvidenceRequired,
    ExternalStepRequiresRecord,
    InstanceClosed,
    InstanceNotFound,
    InvalidEntryPoint,
    InvalidOutcome,
    LaneForbidden,
    NotAssignee,
    NotEnoughIds,
    NotExternalStep,
    OutcomeNotAllowed,
    OutcomeRequired,
    StepNotFound,
    StepNotOpen,
    TaskNotClaimed,
    TaskNotFound,
    TaskNotOpen,
    ValueRequired,
)
from services.core.engine.machine import decide, open_task_of_step
from services.core.engine.state import (
    SYSTEM_WORKER,
    Actor,
    Assign,
    Cancel,
    Claim,
    Command,
    Comment,
    CommentAdded,
    CompleteTask,
    Decision,
    EnqueueJob,
    InstanceCancelled,
    InstanceState,
    InstanceStatus,
    RecordExternal,
    Release,
    Start,
    TaskAssigned,
    TaskClaimed,
    TaskCompleted,
    TaskOpened,
    TaskReleased,
    TaskState,
    TaskStatus,
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


def _actor(sub: str, *roles: str, satker: str = "pn-tais") -> Actor:
    return Actor(sub=sub, roles=frozenset(roles), satker=satker, name=sub.title())


STAF = _actor("u-staf", "staf")
STAF2 = _actor("u-staf2", "staf")
KASUBBAG = _actor("u-kasubbag", "kasubbag")
SEKRETARIS = _actor("u-sekretaris", "sekretaris")
ADMIN = _actor("u-admin", "admin")
PT = _actor("u-pt", "pt", satker="pt-bengkulu")
UMUM = _actor("u-umum", "umum")
WORKER = _actor(SYSTEM_WORKER)
# Roles do not make the worker a person: it may still only complete automated steps.
WORKER_WITH_ROLES = _actor(SYSTEM_WORKER, "staf", "kasubbag", "admin")
STAF_TI = _actor("u-ti", "staf_ti")


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


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (InvalidEntryPoint, "invalid_entry_point", 422),
        (TaskNotFound, "task_not_found", 404),
        (TaskNotOpen, "task_not_open", 409),
        (OutcomeRequired, "outcome_required", 422),
        (InvalidOutcome, "invalid_outcome", 422),
        (OutcomeNotAllowed, "outcome_not_allowed", 422),
        (LaneForbidden, "lane_forbidden", 403),
        (InstanceClosed, "instance_closed", 409),
        (InstanceNotFound, "instance_not_found", 404),
        (AlreadyStarted, "already_started", 409),
        (NotAssignee, "not_assignee", 403),
        (AlreadyClaimed, "task_already_claimed", 409),
        (TaskNotClaimed, "task_not_claimed", 409),
        (ExternalStepRequiresRecord, "external_step_requires_record", 422),
        (NotExternalStep, "not_external_step", 422),
        (EvidenceRequired, "evidence_required", 422),
        (ValueRequired, "value_required", 422),
        (NotEnoughIds, "not_enough_ids", 500),
        (DuplicateTaskId, "duplicate_task_id", 500),
        (DefinitionMismatch, "definition_mismatch", 500),
    ],
)
def test_error_codes_and_statuses_are_stable(
    error: type[DomainError], code: str, status: int
) -> None:
    assert issubclass(error, DomainError)
    assert (error.code, error.status) == (code, status)


ERROR_CASES = [
    # start
    pytest.param(
        "at_draft", lambda s: Start(actor=STAF, instance_id="i1", new_task_ids=NEXT_IDS),
        AlreadyStarted, {"instance_id": "i1"}, id="start-twice",
    ),
    pytest.param(
        "none",
        lambda s: Start(actor=STAF, instance_id="i1", entry_point="kirim", new_task_ids=NEXT_IDS),
        InvalidEntryPoint,
        {"entry_point": "kirim", "allowed_entry_points": ["draft", "review"]},
        id="start-not-an-entry-point",
    ),
    pytest.param(
        "none", lambda s: Start(actor=PT, instance_id="i1", new_task_ids=NEXT_IDS),
        LaneForbidden, {"required_roles": ["admin", "kasubbag", "ketua", "sekretaris", "staf"]},
        id="start-by-another-lane",
    ),
    pytest.param(
        "none",
        lambda s: Start(actor=STAF, instance_id="i1", entry_point="review", new_task_ids=NEXT_IDS),
        LaneForbidden, {"step_id": "review"}, id="start-below-the-entry-lane",
    ),
    pytest.param(
        "none", lambda s: Start(actor=STAF, instance_id="i1"),
        NotEnoughIds, {"needed": 1, "provided": 0}, id="start-without-ids",
    ),
    pytest.param(
        "none", lambda s: Claim(actor=STAF, task_id="t1"),
        InstanceNotFound, {}, id="command-before-start",
    ),
    # complete
    pytest.param(
        "at_draft", lambda s: CompleteTask(actor=STAF, task_id="nope", new_task_ids=NEXT_IDS),
        TaskNotFound, {"task_id": "nope"}, id="complete-unknown-task",
    ),
    pytest.param(
        "at_review",
        lambda s: CompleteTask(actor=STAF, task_id=tid(s, "draft"), new_task_ids=NEXT_IDS),
        TaskNotOpen, {"task_id": "t1", "task_status": "completed"}, id="complete-twice",
    ),
    pytest.param(
        "at_review",
        lambda s: CompleteTask(actor=KASUBBAG, task_id=tid(s, "review"), new_task_ids=NEXT_IDS),
        OutcomeRequired,
        {"step_id": "review", "allowed_outcomes": ["revisi", "setuju", "tolak"]},
        id="decision-without-outcome",
    ),
    pytest.param(
        "at_review",
        lambda s: CompleteTask(
            actor=KASUBBAG, task_id=tid(s, "review"), outcome="mungkin", new_task_ids=NEXT_IDS
        ),
        InvalidOutcome, {"outcome": "mungkin", "allowed_outcomes": ["revisi", "setuju", "tolak"]},
        id="decision-unknown-outcome",
    ),
    pytest.param(
        "at_draft",
        lambda s: CompleteTask(
            actor=STAF, task_id=tid(s, "draft"), outcome="setuju", new_task_ids=NEXT_IDS
        ),
        OutcomeNotAllowed, {"step_id": "draft", "outcome": "setuju"}, id="outcome-on-plain-task",
    ),
    pytest.param(
        "at_review",
        lambda s: CompleteTask(
            actor=STAF, task_id=tid(s, "review"), outcome="setuju", new_task_ids=NEXT_IDS
        ),
        LaneForbidden, {"required_roles": ["kasubbag"], "step_id": "review"},
        id="complete-in-another-lane",
    ),
    pytest.param(
        "at_draft",
        lambda s: CompleteTask(actor=KASUBBAG, task_id=tid(s, "draft"), new_task_ids=NEXT_IDS),
        LaneForbidden, {"required_roles": ["staf"]}, id="supervisor-does-not-complete-staff-work",
    ),
    pytest.param(
        "at_draft",
        lambda s: CompleteTask(actor=WORKER, task_id=tid(s, "draft"), new_task_ids=NEXT_IDS),
        LaneForbidden, {"required_roles": []}, id="worker-completes-a-human-task",
    ),
    pytest.param(
        "at_draft",
        lambda s: CompleteTask(
            actor=WORKER_WITH_ROLES, task_id=tid(s, "draft"), new_task_ids=NEXT_IDS
        ),
        LaneForbidden, {}, id="worker-roles-do-not-count",
    ),
    pytest.param(
        "at_kirim",
        lambda s: CompleteTask(actor=PT, task_id=tid(s, "kirim"), new_task_ids=NEXT_IDS),
        ExternalStepRequiresRecord, {"step_id": "kirim"}, id="complete-external-step",
    ),
    pytest.param(
        "draft_claimed",
        lambda s: CompleteTask(actor=STAF2, task_id=tid(s, "draft"), new_task_ids=NEXT_IDS),
        NotAssignee, {"task_id": "t1", "assignee": "u-staf"}, id="complete-someone-elses-claim",
    ),
    pytest.param(
        "at_draft", lambda s: CompleteTask(actor=STAF, task_id=tid(s, "draft")),
        NotEnoughIds, {"needed": 1, "provided": 0}, id="complete-without-ids",
    ),
    pytest.param(
        "at_draft",
        lambda s: CompleteTask(actor=STAF, task_id=tid(s, "draft"), new_task_ids=("t1",)),
        DuplicateTaskId, {"task_id": "t1"}, id="complete-reusing-an-id",
    ),
    # record external
    pytest.param(
        "at_draft",
        lambda s: RecordExternal(actor=STAF, task_id=tid(s, "draft"), note="x"),
        NotExternalStep, {"step_id": "draft"}, id="record-internal-step",
    ),
    pytest.param(
        "at_kirim", lambda s: RecordExternal(actor=STAF, task_id=tid(s, "kirim")),
        EvidenceRequired, {"task_id": "t3"}, id="record-without-evidence",
    ),
    pytest.param(
        "at_kirim", lambda s: RecordExternal(actor=STAF, task_id=tid(s, "kirim"), note="  "),
        EvidenceRequired, {}, id="record-with-blank-note",
    ),
    pytest.param(
        "at_kirim", lambda s: RecordExternal(actor=KASUBBAG, task_id=tid(s, "kirim"), note="x"),
        LaneForbidden, {"required_roles": ["pt", "staf"]}, id="record-by-neither-owner-nor-party",
    ),
    pytest.param(
        "at_kirim",
        lambda s: RecordExternal(actor=WORKER_WITH_ROLES, task_id=tid(s, "kirim"), note="x"),
        LaneForbidden, {}, id="record-by-worker",
    ),
    pytest.param(
        "at_kirim",
        lambda s: RecordExternal(
            actor=STAF, task_id=tid(s, "kirim"), note="x", outcome="ok", new_task_ids=NEXT_IDS
        ),
        OutcomeNotAllowed, {"outcome": "ok"}, id="record-with-outcome-on-plain-step",
    ),
    # claim
    pytest.param(
        "at_draft", lambda s: Claim(actor=KASUBBAG, task_id=tid(s, "draft")),
        LaneForbidden, {"required_roles": ["staf"]}, id="claim-in-another-lane",
    ),
    pytest.param(
        "at_arsip", lambda s: Claim(actor=WORKER_WITH_ROLES, task_id=tid(s, "arsip")),
        LaneForbidden, {}, id="worker-claims",
    ),
    pytest.param(
        "draft_claimed", lambda s: Claim(actor=STAF2, task_id=tid(s, "draft")),
        AlreadyClaimed, {"assignee": "u-staf"}, id="claim-claimed-task",
    ),
    pytest.param(
        "at_review", lambda s: Claim(actor=STAF, task_id=tid(s, "draft")),
        TaskNotOpen, {"task_id": "t1"}, id="claim-completed-task",
    ),
    # assign
    pytest.param(
        "at_draft", lambda s: Assign(actor=PT, task_id=tid(s, "draft"), assignee_sub="u-staf"),
        LaneForbidden, {"required_roles": ["kasubbag", "ketua", "sekretaris", "staf"]},
        id="assign-from-outside-the-chain",
    ),
    pytest.param(
        "at_review",
        lambda s: Assign(actor=STAF, task_id=tid(s, "review"), assignee_sub="u-kasubbag"),
        LaneForbidden, {}, id="assign-upwards",
    ),
    pytest.param(
        "at_draft", lambda s: Assign(actor=KASUBBAG, task_id=tid(s, "draft"), assignee_sub=" "),
        ValueRequired, {"field": "assignee_sub"}, id="assign-to-nobody",
    ),
    # release
    pytest.param(
        "at_draft", lambda s: Release(actor=STAF, task_id=tid(s, "draft")),
        TaskNotClaimed, {"task_id": "t1"}, id="release-unclaimed",
    ),
    pytest.param(
        "review_claimed", lambda s: Release(actor=STAF, task_id=tid(s, "review")),
        NotAssignee, {"assignee": "u-kasubbag"}, id="release-someone-elses-claim",
    ),
    # cancel
    pytest.param(
        "at_draft", lambda s: Cancel(actor=STAF, reason="bosan"),
        LaneForbidden, {"required_roles": ["admin", "kasubbag", "ketua", "sekretaris"]},
        id="cancel-by-the-first-lane",
    ),
    pytest.param(
        "at_draft", lambda s: Cancel(actor=KASUBBAG, reason=""),
        ValueRequired, {"field": "reason"}, id="cancel-without-reason",
    ),
    pytest.param(
        "completed", lambda s: Cancel(actor=ADMIN, reason="terlambat"),
        InstanceClosed, {"instance_id": "i1", "instance_status": "completed"},
        id="cancel-completed-instance",
    ),
    # comment
    pytest.param(
        "at_draft", lambda s: Comment(actor=UMUM, text="   "),
        ValueRequired, {"field": "text"}, id="blank-comment",
    ),
    pytest.param(
        "at_draft", lambda s: Comment(actor=UMUM, text="?", task_id="nope"),
        TaskNotFound, {"task_id": "nope"}, id="comment-unknown-task",
    ),
    pytest.param(
        "at_review", lambda s: Comment(actor=UMUM, text="?", task_id=tid(s, "draft")),
        TaskNotOpen, {}, id="comment-closed-task",
    ),
    # closed instances refuse everything
    pytest.param(
        "cancelled", lambda s: Comment(actor=KASUBBAG, text="?"),
        InstanceClosed, {"instance_status": "cancelled"}, id="comment-cancelled-instance",
    ),
    pytest.param(
        "cancelled",
        lambda s: CompleteTask(actor=STAF, task_id=tid(s, "draft"), new_task_ids=NEXT_IDS),
        InstanceClosed, {}, id="complete-in-cancelled-instance",
    ),
    pytest.param(
        "completed", lambda s: Claim(actor=KASUBBAG, task_id=tid(s, "review")),
        InstanceClosed, {"instance_status": "completed"}, id="claim-in-completed-instance",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("scenario", "command_for", "error", "details"), ERROR_CASES)
def test_refused_commands_raise_domain_errors_with_details(
    scenario: str,
    command_for: CommandFor,
    error: type[DomainError],
    details: dict[str, object],
) -> None:
    snapshot = SCENARIOS[scenario]()
    with pytest.raises(error) as raised:
        run(snapshot, command_for(snapshot))
    assert raised.value.details.items() >= details.items()
    assert str(raised.value) == raised.value.message


def test_snapshot_of_another_definition_is_refused() -> None:
    snapshot = walk([])
    with pytest.raises(DefinitionMismatch):
        run(snapshot, Claim(actor=STAF, task_id="t1"), definition=SOP10)
    with pytest.raises(DefinitionMismatch):
        run(replace(snapshot, sop_version=2), Claim(actor=STAF, task_id="t1"))


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run(
            None,
            Start(actor=STAF, instance_id="i1", new_task_ids=("t1",)),
            now=T0.replace(tzinfo=None),
        )


# --- start ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "entry", "first_step"),
    [
        (STAF, None, "draft"),  # the first entry point is the default
        (STAF, "draft", "draft"),
        (KASUBBAG, "draft", "draft"),  # a supervisor of the lane
        (ADMIN, None, "draft"),
        (WORKER, None, "draft"),  # monitors and cron jobs start procedures
        (KASUBBAG, "review", "review"),
        (SEKRETARIS, "review", "review"),
    ],
)
def test_start_opens_the_entry_step(actor: Actor, entry: str | None, first_step: str) -> None:
    decision = run(
        None,
        Start(actor=actor, instance_id="i1", entry_point=entry, new_task_ids=["t1", "t9"]),
        now=T0,
    )
    state = decision.state
    assert (state.id, state.sop_code, state.sop_version) == ("i1", "surat-keluar", 3)
    assert (state.status, state.version, state.started_at, state.ended_at) == (
        InstanceStatus.ACTIVE,
        1,
        T0,
        None,
    )
    assert state.satker == "pn-tais"
    assert state.due_at == T0 + timedelta(days=5)  # the procedure-level standard
    (task,) = state.tasks
    assert (task.id, task.step_id, task.status, task.opened_at) == ("t1", first_step, "open", T0)
    assert [effect.event_type for effect in decision.effects] == ["instance.started", "task.opened"]
    assert decision.effects[1] == TaskOpened(task=task)


def test_start_may_name_the_satker() -> None:
    command = Start(actor=WORKER, instance_id="i1", new_task_ids=("t1",), satker="pn-curup")
    assert run(None, command).state.satker == "pn-curup"


@pytest.mark.parametrize(
    ("step_id", "lane", "kind", "warn", "due"),
    [
        ("draft", "staf", StepKind.TASK, timedelta(hours=4), timedelta(hours=4)),
        ("review", "kasubbag", StepKind.DECISION, timedelta(minutes=15), timedelta(minutes=30)),
        ("kirim", "pt", StepKind.EXTERNAL, timedelta(days=3), timedelta(days=3)),
        ("arsip", "staf", StepKind.AUTOMATED, None, None),  # no standard, no deadline
    ],
)
def test_opened_tasks_carry_deadlines_from_their_time_standard(
    step_id: str, lane: str, kind: StepKind, warn: timedelta | None, due: timedelta | None
) -> None:
    state = walk(
        [Act("draft", STAF), Act("review", KASUBBAG, "setuju"), Act("kirim", STAF, record=True)]
    )
    task = next(task for task in state.tasks if task.step_id == step_id)
    assert (task.lane, task.kind) == (lane, kind)
    assert task.warn_at == (None if warn is None else task.opened_at + warn)
    assert task.due_at == (None if due is None else task.opened_at + due)


def test_deadlines_are_asked_with_the_standard_and_the_opening_instant() -> None:
    calls: list[tuple[str, datetime]] = []

    def recording(standard: TimeStandard, opened: datetime) -> tuple[datetime, None]:
        calls.append((standard.source_text, opened))
        return opened, None

    start = Start(actor=STAF, instance_id="i1", new_task_ids=("t1",))
    decision = decide(SURAT, None, start, T0, deadlines=recording, roles=SYNTHETIC_ROLES)
    assert calls == [("4 jam", T0), ("5 hari", T0)]
    assert decision.state.due_at is None  # the fake gave no due instant; the machine obeys
    assert (decision.state.tasks[0].warn_at, decision.state.tasks[0].due_at) == (T0, None)


# --- flows ----------------------------------------------------------------------------

FLOWS = [
    pytest.param(
        SURAT, None,
        [Act("draft", STAF), Act("review", KASUBBAG, "setuju"), Act("kirim", STAF, record=True),
         Act("arsip", WORKER)],
        ["draft", "review", "kirim", "arsip"], id="happy-path",
    ),
    pytest.param(
        SURAT, None,
        [Act("draft", STAF), Act("review", KASUBBAG, "revisi"), Act("draft", STAF2),
         Act("review", KASUBBAG, "setuju"), Act("kirim", PT, record=True), Act("arsip", STAF)],
        ["draft", "review", "draft", "review", "kirim", "arsip"], id="loop-then-party-records",
    ),
    pytest.param(
        SURAT, None, [Act("draft", STAF), Act("review", KASUBBAG, "tolak")],
        ["draft", "review"], id="null-outcome-ends",
    ),
    pytest.param(
        SURAT, "review", [Act("review", KASUBBAG, "tolak")], ["review"], id="second-entry-point",
    ),
    pytest.param(
        SOP10, None,
        [Act("sinkron_backup_otomatis", WORKER), Act("cek_keberhasilan", WORKER, "berhasil"),
         Act("salin_ke_harddisk", STAF_TI), Act("lapor_hasil", STAF_TI)],
        ["sinkron_backup_otomatis", "cek_keberhasilan", "salin_ke_harddisk", "lapor_hasil"],
        id="sop10-berhasil",
    ),
    pytest.param(
        SOP10, None,
        [Act("sinkron_backup_otomatis", WORKER), Act("cek_keberhasilan", WORKER, "tidak_berhasil"),
         Act("sinkron_backup_manual", STAF_TI), Act("salin_ke_harddisk", STAF_TI),
         Act("lapor_hasil", STAF_TI)],
        ["sinkron_backup_otomatis", "cek_keberhasilan", "sinkron_backup_manual",
         "salin_ke_harddisk", "lapor_hasil"],
        id="sop10-tidak-berhasil",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "entry", "acts", "steps"), FLOWS)
def test_flows_run_to_completion(
    definition: SopDefinition, entry: str | None, acts: list[Act], steps: list[str]
) -> None:
    start = Start(actor=WORKER, instance_id="i1", entry_point=entry, new_task_ids=("t1",))
    state = run(None, start, definition=definition, now=T0).state
    for number, step in enumerate(acts, start=1):
        assert state.status is InstanceStatus.ACTIVE
        assert [task.step_id for task in state.open_tasks] == [step.step_id]
        decision = act(state, step, definition)
        assert decision.state.version == state.version + 1
        state = decision.state
        assert len(state.tasks) == min(number + 1, len(steps))
    assert [task.step_id for task in state.tasks] == steps
    assert len({task.id for task in state.tasks}) == len(steps)  # a loop opens a new task
    assert all(task.status is TaskStatus.COMPLETED for task in state.tasks)
    assert (state.status, state.ended_at) == (InstanceStatus.COMPLETED, T1)
    assert [task.completed_by for task in state.tasks] == [step.actor.sub for step in acts]
    assert [task.outcome for task in state.tasks] == [step.outcome for step in acts]


EFFECT_CASES = [
    pytest.param(
        "at_draft", Act("draft", STAF), ["task.completed", "task.opened"], id="task-to-decision",
    ),
    pytest.param(
        "at_review", Act("review", KASUBBAG, "revisi"), ["task.completed", "task.opened"],
        id="decision-loops-back",
    ),
    pytest.param(
        "at_review", Act("review", KASUBBAG, "tolak"), ["task.completed", "instance.completed"],
        id="decision-ends",
    ),
    pytest.param(
        "at_kirim", Act("kirim", STAF, record=True),
        ["task.completed", "task.opened", "job.enqueued"], id="external-to-automated",
    ),
    pytest.param(
        "at_arsip", Act("arsip", WORKER), ["task.completed", "instance.completed"],
        id="automated-ends",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("scenario", "step", "event_types"), EFFECT_CASES)
def test_completion_effects(scenario: str, step: Act, event_types: list[str]) -> None:
    snapshot = SCENARIOS[scenario]()
    assert snapshot is not None
    decision = act(snapshot, step)
    assert [effect.event_type for effect in decision.effects] == event_types
    completed = decision.effects[0]
    assert isinstance(completed, TaskCompleted)
    assert completed.task == decision.state.task(tid(snapshot, step.step_id))
    assert completed.outcome == step.outcome
    opened = [effect.task for effect in decision.effects if isinstance(effect, TaskOpened)]
    assert opened == list(decision.state.tasks[len(snapshot.tasks) :])
    for effect in decision.effects:
        if isinstance(effect, EnqueueJob):
            assert effect == EnqueueJob(job="arsip_job", task_id=opened[0].id)


def test_completion_records_who_what_and_evidence() -> None:
    snapshot = walk([Act("draft", STAF), Act("review", KASUBBAG, "setuju")])
    evidence = ["sha256:abc", "surat-123.pdf"]
    command = RecordExternal(
        actor=PT, task_id="t3", note="diterima", evidence=evidence, new_task_ids=["t4"]
    )
    task = run(snapshot, command).state.task("t3")
    assert task == replace(
        snapshot.tasks[2],
        status=TaskStatus.COMPLETED,
        completed_at=T1,
        completed_by="u-pt",
        note="diterima",
        evidence=("sha256:abc", "surat-123.pdf"),
        next_check_at=None,  # a closed task is no longer watched for deadlines
    )


def test_record_external_accepts_evidence_without_a_note() -> None:
    snapshot = SCENARIOS["at_kirim"]()
    command = RecordExternal(actor=STAF, task_id="t3", evidence=("bukti.pdf",), new_task_ids=["t4"])
    assert run(snapshot, command).state.task("t3") is not None


def test_sop10_automated_steps_enqueue_their_jobs() -> None:
    start = Start(actor=WORKER, instance_id="d1", new_task_ids=("t1",))
    started = run(None, start, definition=SOP10, now=T0)
    assert [effect.event_type for effect in started.effects] == [
        "instance.started",
        "task.opened",
        "job.enqueued",
    ]
    assert started.effects[2] == EnqueueJob(job="sipp_scheduled_run", task_id="t1")
    # The whole procedure has "1 hari kerja"; its steps have none of their own.
    assert started.state.due_at == T0 + timedelta(days=1)
    assert (started.state.tasks[0].warn_at, started.state.tasks[0].due_at) == (None, None)
    checked = act(started.state, Act("sinkron_backup_otomatis", WORKER), SOP10)
    assert checked.effects[-1] == EnqueueJob(job="sipp_backup_check", task_id="t2")


@pytest.mark.parametrize(
    ("step_id", "actor", "error"),
    [
        ("salin_ke_harddisk", WORKER, LaneForbidden),  # a human task
        ("salin_ke_harddisk", _actor("u-kasubbag", "kasubbag_ptip"), LaneForbidden),
    ],
)
def test_sop10_lanes_are_enforced(step_id: str, actor: Actor, error: type[DomainError]) -> None:
    state = walk(
        [Act("sinkron_backup_otomatis", WORKER), Act("cek_keberhasilan", WORKER, "berhasil")],
        definition=SOP10,
        actor=WORKER,
    )
    with pytest.raises(error):
        act(state, Act(step_id, actor), SOP10)


# --- claim, assign, release -----------------------------------------------------------

CLAIM_CASES = [
    pytest.param(
        "at_draft", lambda s: Claim(actor=STAF, task_id="t1"), "u-staf", TaskClaimed, None,
        id="claim-own-lane",
    ),
    pytest.param(
        "at_kirim", lambda s: Claim(actor=STAF, task_id="t3"), "u-staf", TaskClaimed, None,
        id="owner-claims-external",
    ),
    pytest.param(
        "at_draft", lambda s: Assign(actor=STAF, task_id="t1", assignee_sub="u-staf2"),
        "u-staf2", TaskAssigned, None, id="lane-peer-assigns",
    ),
    pytest.param(
        "at_draft", lambda s: Assign(actor=SEKRETARIS, task_id="t1", assignee_sub="u-staf2"),
        "u-staf2", TaskAssigned, None, id="above-the-lane-assigns",
    ),
    pytest.param(
        "draft_claimed", lambda s: Assign(actor=KASUBBAG, task_id="t1", assignee_sub="u-staf2"),
        "u-staf2", TaskAssigned, "u-staf", id="supervisor-reassigns",
    ),
    pytest.param(
        "at_kirim", lambda s: Assign(actor=KASUBBAG, task_id="t3", assignee_sub="u-staf"),
        "u-staf", TaskAssigned, None, id="above-the-owner-assigns-external",
    ),
    pytest.param(
        "draft_claimed", lambda s: Release(actor=STAF, task_id="t1"), None, TaskReleased, "u-staf",
        id="assignee-releases",
    ),
    pytest.param(
        "draft_claimed", lambda s: Release(actor=KASUBBAG, task_id="t1"), None, TaskReleased,
        "u-staf", id="supervisor-releases",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("scenario", "command_for", "assignee", "effect", "previous"), CLAIM_CASES)
def test_claim_assign_release(
    scenario: str,
    command_for: CommandFor,
    assignee: str | None,
    effect: type[TaskClaimed | TaskAssigned | TaskReleased],
    previous: str | None,
) -> None:
    snapshot = SCENARIOS[scenario]()
    assert snapshot is not None
    command = command_for(snapshot)
    decision = run(snapshot, command)
    task_id = getattr(command, "task_id")  # noqa: B009 - every command in the table has one
    task = decision.state.task(task_id)
    assert task is not None
    assert (task.assignee, task.claimed_at) == (assignee, None if assignee is None else T1)
    (emitted,) = decision.effects
    assert isinstance(emitted, effect)
    assert emitted.task == task
    if not isinstance(emitted, TaskClaimed):
        assert emitted.previous_assignee == previous
    others = [t for t in decision.state.tasks if t.id != task_id]
    assert others == [t for t in snapshot.tasks if t.id != task_id]


def test_assignee_completes_a_claimed_task() -> None:
    snapshot = SCENARIOS["draft_claimed"]()
    decision = run(snapshot, CompleteTask(actor=STAF, task_id="t1", new_task_ids=NEXT_IDS))
    assert decision.state.task("t1") is not None
    assert decision.state.open_tasks[0].step_id == "review"


# --- cancel and comment ---------------------------------------------------------------


@pytest.mark.parametrize("actor", [KASUBBAG, SEKRETARIS, ADMIN])
def test_cancel_closes_open_tasks_and_keeps_finished_ones(actor: Actor) -> None:
    snapshot = walk([Act("draft", STAF)])
    decision = run(snapshot, Cancel(actor=actor, reason="dibatalkan pimpinan"))
    state = decision.state
    assert (state.status, state.ended_at, state.version) == (
        InstanceStatus.CANCELLED,
        T1,
        snapshot.version + 1,
    )
    assert [task.status for task in state.tasks] == [TaskStatus.COMPLETED, TaskStatus.CANCELLED]
    assert state.tasks[0] == snapshot.tasks[0]
    assert [effect.event_type for effect in decision.effects] == [
        "task.cancelled",
        "instance.cancelled",
    ]
    assert decision.effects[-1] == InstanceCancelled(reason="dibatalkan pimpinan")


@pytest.mark.parametrize("task_id", [None, "t1"])
def test_comment_changes_nothing_but_the_version(task_id: str | None) -> None:
    snapshot = walk([])
    decision = run(snapshot, Comment(actor=UMUM, text="mohon dipercepat", task_id=task_id))
    assert decision.state == replace(snapshot, version=snapshot.version + 1)
    assert decision.effects == (CommentAdded(text="mohon dipercepat", task_id=task_id),)
    assert decision.effects[0].event_type == "comment.added"


# --- versions and purity --------------------------------------------------------------

ACCEPTED = [
    pytest.param("at_draft", lambda s: Claim(actor=STAF, task_id="t1"), id="claim"),
    pytest.param(
        "at_draft", lambda s: Assign(actor=KASUBBAG, task_id="t1", assignee_sub="u-staf"),
        id="assign",
    ),
    pytest.param("draft_claimed", lambda s: Release(actor=STAF, task_id="t1"), id="release"),
    pytest.param("at_draft", lambda s: Comment(actor=STAF, text="ok", task_id="t1"), id="comment"),
    pytest.param("at_draft", lambda s: Cancel(actor=ADMIN, reason="duplikat"), id="cancel"),
    pytest.param(
        "at_draft",
        lambda s: CompleteTask(
            actor=STAF, task_id="t1", note="n", evidence=["a.pdf"], new_task_ids=["t2", "t3"]
        ),
        id="complete",
    ),
    pytest.param(
        "at_kirim",
        lambda s: RecordExternal(actor=STAF, task_id="t3", evidence=["b.pdf"], new_task_ids=["t4"]),
        id="record-external",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("scenario", "command_for"), ACCEPTED)
def test_every_accepted_command_bumps_the_version_and_mutates_no_input(
    scenario: str, command_for: CommandFor
) -> None:
    snapshot = SCENARIOS[scenario]()
    assert snapshot is not None
    command = command_for(snapshot)
    before = (copy.deepcopy(snapshot), copy.deepcopy(command), SURAT.model_dump())
    decision = run(snapshot, command)
    assert decision.state.version == snapshot.version + 1
    assert decision.state is not snapshot
    assert (snapshot, command, SURAT.model_dump()) == before
    assert all(isinstance(task, TaskState) for task in decision.state.tasks)


def test_start_mutates_no_input() -> None:
    ids = ["t1", "t2"]
    command = Start(actor=STAF, instance_id="i1", new_task_ids=ids)
    before = copy.deepcopy(command)
    run(None, command)
    assert command == before
    assert ids == ["t1", "t2"]


def test_decide_is_deterministic() -> None:
    snapshot = SCENARIOS["at_review"]()
    command = CompleteTask(actor=KASUBBAG, task_id="t2", outcome="setuju", new_task_ids=NEXT_IDS)
    assert run(snapshot, command) == run(snapshot, command)


# --- naming a step instead of a task ----------------------------------------------------


def test_a_step_with_an_open_task_gives_that_task() -> None:
    snapshot = walk([Act("draft", STAF)])
    assert open_task_of_step(SURAT, snapshot, "review") == snapshot.tasks[1]


@pytest.mark.parametrize(
    ("acts", "step_id", "error", "details"),
    [
        pytest.param(
            [Act("draft", STAF)], "draft", StepNotOpen,
            {"step_id": "draft", "task_id": "t1", "task_status": "completed"},
            id="completed-meanwhile",
        ),
        pytest.param(
            [], "review", StepNotOpen,
            {"step_id": "review", "task_id": None, "task_status": None}, id="not-reached",
        ),
        pytest.param([], "tidak_ada", StepNotFound, {"step_id": "tidak_ada"}, id="not-in-sop"),
    ],
)  # fmt: skip
def test_a_step_without_an_open_task_is_a_conflict_unless_it_is_not_in_the_sop(
    acts: list[Act], step_id: str, error: type[DomainError], details: dict[str, object]
) -> None:
    with pytest.raises(error) as refused:
        open_task_of_step(SURAT, walk(acts), step_id)
    assert details.items() <= refused.value.details.items()
    assert (refused.value.status, refused.value.code) == (
        (409, "step_not_open") if error is StepNotOpen else (404, "step_not_found")
    )
