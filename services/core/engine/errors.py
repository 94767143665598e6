"""Why the state machine refuses a command.

Every refusal is an `AlurError` (the one error base, `services.core.errors`): a stable
`code` (what clients branch on, the RFC 9457 `code` member), an HTTP-like `status` (so
the API maps errors without a lookup table) and JSON-ready `details` (the problem's
extension members). The 500s are not the caller's fault: they mean the service fed the
engine inconsistent input (too few ids, a snapshot of another definition).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from services.core.errors import AlurError


class DomainError(AlurError):
    """A refusal of the engine. Its title is its code in words unless it names one."""

    code: ClassVar[str] = "domain_error"
    title: ClassVar[str] = "Domain error"
    status: ClassVar[int] = 400

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "title" not in cls.__dict__:
            cls.title = cls.code.replace("_", " ").capitalize()

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message, extra=details)

    @property
    def message(self) -> str:
        return self.detail

    @property
    def details(self) -> dict[str, object]:
        return self.extra


def _listed(values: Iterable[str]) -> list[str]:
    # Sorted so messages and details do not depend on set or dict ordering.
    return sorted(values)


class InstanceNotFound(DomainError):
    code = "instance_not_found"
    status = 404

    def __init__(self) -> None:
        super().__init__("the instance does not exist; start it first")


class AlreadyStarted(DomainError):
    code = "already_started"
    status = 409

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"instance {instance_id} has already started", instance_id=instance_id)


class InvalidCommentKind(DomainError):
    code = "invalid_comment_kind"
    status = 422

    def __init__(self, kind: str, allowed: Iterable[str]) -> None:
        allowed_list = list(allowed)
        super().__init__(
            f"{kind!r} is not a kind of comment; allowed: {', '.join(allowed_list)}",
            kind=kind,
            allowed_kinds=allowed_list,
        )


class InvalidEntryPoint(DomainError):
    code = "invalid_entry_point"
    status = 422

    def __init__(self, entry_point: str, allowed: Iterable[str]) -> None:
        allowed_list = list(allowed)  # definition order: the first is the default
        super().__init__(
            f"{entry_point!r} is not an entry point; allowed: {', '.join(allowed_list)}",
            entry_point=entry_point,
            allowed_entry_points=allowed_list,
        )


class InstanceClosed(DomainError):
    code = "instance_closed"
    status = 409

    def __init__(self, instance_id: str, status: str) -> None:
        super().__init__(
            f"instance {instance_id} is {status} and accepts no more commands",
            instance_id=instance_id,
            instance_status=status,
        )


class TaskNotFound(DomainError):
    code = "task_not_found"
    status = 404

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} does not exist in this instance", task_id=task_id)


class TaskNotOpen(DomainError):
    code = "task_not_open"
    status = 409

    def __init__(self, task_id: str, status: str) -> None:
        super().__init__(
            f"task {task_id} is {status}, not open", task_id=task_id, task_status=status
        )


class StepNotFound(DomainError):
    code = "step_not_found"
    status = 404

    def __init__(self, step_id: str, sop: str) -> None:
        super().__init__(f"{sop} has no step {step_id!r}", step_id=step_id, sop=sop)


class StepNotOpen(DomainError):
    """The step is in the SOP but has no open task: not reached yet, or its task was
    completed or cancelled (by a concurrent request, for instance)."""

    code = "step_not_open"
    status = 409

    def __init__(self, step_id: str, task_id: str | None, task_status: str | None) -> None:
        state = f"its task {task_id} is {task_status}" if task_id else "it has not been reached"
        super().__init__(
            f"step {step_id} has no open task: {state}",
            step_id=step_id,
            task_id=task_id,
            task_status=task_status,
        )


class OutcomeRequired(DomainError):
    code = "outcome_required"
    status = 422

    def __init__(self, task_id: str, step_id: str, allowed: Iterable[str]) -> None:
        allowed_list = _listed(allowed)
        super().__init__(
            f"step {step_id} is a decision: give one of the outcomes {', '.join(allowed_list)}",
            task_id=task_id,
            step_id=step_id,
            allowed_outcomes=allowed_list,
        )


class InvalidOutcome(DomainError):
    code = "invalid_outcome"
    status = 422

    def __init__(self, task_id: str, step_id: str, outcome: str, allowed: Iterable[str]) -> None:
        allowed_list = _listed(allowed)
        super().__init__(
            f"{outcome!r} is not an outcome of step {step_id}; allowed: {', '.join(allowed_list)}",
            task_id=task_id,
            step_id=step_id,
            outcome=outcome,
            allowed_outcomes=allowed_list,
        )


class OutcomeNotAllowed(DomainError):
    code = "outcome_not_allowed"
    status = 422

    def __init__(self, task_id: str, step_id: str, outcome: str) -> None:
        super().__init__(
            f"step {step_id} is not a decision and takes no outcome (got {outcome!r})",
            task_id=task_id,
            step_id=step_id,
            outcome=outcome,
        )


class LaneForbidden(DomainError):
    code = "lane_forbidden"
    status = 403

    def __init__(
        self,
        action: str,
        required_roles: Iterable[str],
        *,
        task_id: str | None = None,
        step_id: str | None = None,
    ) -> None:
        roles = _listed(required_roles)
        target = f" task {task_id}" if task_id is not None else ""
        wanted = ", ".join(roles) if roles else "none (not allowed for this actor)"
        super().__init__(
            f"{action}{target} requires one of the roles: {wanted}",
            action=action,
            required_roles=roles,
            task_id=task_id,
            step_id=step_id,
        )


class NotAssignee(DomainError):
    code = "not_assignee"
    status = 403

    def __init__(self, task_id: str, assignee: str) -> None:
        super().__init__(
            f"task {task_id} is assigned to {assignee}", task_id=task_id, assignee=assignee
        )


class AlreadyClaimed(DomainError):
    code = "task_already_claimed"
    status = 409

    def __init__(self, task_id: str, assignee: str) -> None:
        super().__init__(
            f"task {task_id} is already claimed by {assignee}", task_id=task_id, assignee=assignee
        )


class TaskNotClaimed(DomainError):
    code = "task_not_claimed"
    status = 409

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} is not claimed by anyone", task_id=task_id)


class ExternalStepRequiresRecord(DomainError):
    code = "external_step_requires_record"
    status = 422

    def __init__(self, task_id: str, step_id: str) -> None:
        super().__init__(
            f"step {step_id} is done by an external party: record it with RecordExternal",
            task_id=task_id,
            step_id=step_id,
        )


class NotExternalStep(DomainError):
    code = "not_external_step"
    status = 422

    def __init__(self, task_id: str, step_id: str) -> None:
        super().__init__(
            f"step {step_id} is not external: complete it with CompleteTask",
            task_id=task_id,
            step_id=step_id,
        )


class EvidenceRequired(DomainError):
    code = "evidence_required"
    status = 422

    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"recording external task {task_id} needs evidence or a note", task_id=task_id
        )


class ValueRequired(DomainError):
    code = "value_required"
    status = 422

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} must not be blank", field=field)


class NotEnoughIds(DomainError):
    code = "not_enough_ids"
    status = 500

    def __init__(self, needed: int, provided: int) -> None:
        super().__init__(
            f"the command opens {needed} task(s) but carries {provided} new task id(s)",
            needed=needed,
            provided=provided,
        )


class DuplicateTaskId(DomainError):
    code = "duplicate_task_id"
    status = 500

    def __init__(self, task_id: str) -> None:
        super().__init__(f"new task id {task_id} is already in use", task_id=task_id)


class DefinitionMismatch(DomainError):
    code = "definition_mismatch"
    status = 500

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(
            f"the instance runs {expected} but was given definition {actual}",
            expected=expected,
            actual=actual,
        )


class NothingDue(DomainError):
    code = "nothing_due"
    status = 409

    def __init__(self, task_id: str | None) -> None:
        subject = f"task {task_id}" if task_id is not None else "the instance"
        super().__init__(f"no deadline notice is due for {subject}", task_id=task_id)
