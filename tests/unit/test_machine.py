"""The pure SOP state machine, driven by tables of commands and expected outcomes: starts,
flows to completion, claims and assignments, cancel and comment, versions and purity.
The shared SOPs, actors and helpers are in `machine_cases`."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from services.core.engine.definition import SopDefinition, StepKind, TimeStandard
from services.core.engine.errors import (
    DomainError,
    LaneForbidden,
)
from services.core.engine.machine import decide
from services.core.engine.state import (
    Actor,
    Assign,
    Cancel,
    Claim,
    Comment,
    CommentAdded,
    CompleteTask,
    EnqueueJob,
    InstanceCancelled,
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
from tests.unit.machine_cases import (
    ADMIN,
    KASUBBAG,
    NEXT_IDS,
    PT,
    SCENARIOS,
    SEKRETARIS,
    SOP10,
    STAF,
    STAF2,
    STAF_TI,
    SURAT,
    SYNTHETIC_ROLES,
    T0,
    T1,
    UMUM,
    WORKER,
    Act,
    CommandFor,
    act,
    make_actor,
    run,
    tid,
    walk,
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
        ("salin_ke_harddisk", make_actor("u-kasubbag", "kasubbag_ptip"), LaneForbidden),
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
