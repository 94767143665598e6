"""The state machine refuses what the SOP does not allow: stable error codes and details,
steps named rather than tasks, inconsistent input as a programming error."""

from __future__ import annotations

from dataclasses import replace

import pytest

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
from services.core.engine.machine import open_task_of_step
from services.core.engine.state import (
    Assign,
    Cancel,
    Claim,
    Comment,
    CompleteTask,
    RecordExternal,
    Release,
    Start,
)
from tests.unit.machine_cases import (
    ADMIN,
    KASUBBAG,
    NEXT_IDS,
    PT,
    SCENARIOS,
    SOP10,
    STAF,
    STAF2,
    SURAT,
    T0,
    UMUM,
    WORKER,
    WORKER_WITH_ROLES,
    Act,
    CommandFor,
    run,
    tid,
    walk,
)

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
