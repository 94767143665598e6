"""The SOP catalog as typed, immutable data.

Field names are a contract (ARCHITECTURE.md): they are what the YAML files say and
what `GET /v1/sops/{code}` answers. Structural rules live in the JSON Schema beside
the catalog and in `services.core.catalog.validation`; these models only type the
data once it is known to be valid.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.core.engine.durations import Duration


def _iso_duration(value: str) -> str:
    Duration.parse(value)
    return value


IsoDuration = Annotated[str, AfterValidator(_iso_duration)]

DEFAULT_REVIEW_MONTHS = 12
MAX_REVIEW_MONTHS = 60


class StepKind(StrEnum):
    TASK = "task"
    DECISION = "decision"
    AUTOMATED = "automated"
    EXTERNAL = "external"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TimeStandard(_Frozen):
    """A step's (or a procedure's) *waktu*: the source text and its reading.

    A single value ("1 hari") has `min == max`; a range ("15-30 menit") has both ends.
    """

    source_text: str
    min: IsoDuration
    max: IsoDuration
    basis: Literal["working", "calendar"] = "working"

    @property
    def min_duration(self) -> Duration:
        return Duration.parse(self.min)

    @property
    def max_duration(self) -> Duration:
        return Duration.parse(self.max)

    @property
    def is_range(self) -> bool:
        return self.min_duration != self.max_duration


class Step(_Frozen):
    id: str
    number: int
    activity: str
    lane: str
    kind: StepKind
    requirements: tuple[str, ...] = ()
    output: str | None = None
    time_standard: TimeStandard | None = None
    source_note: str | None = None
    next: str | None = None
    outcomes: dict[str, str | None] | None = None
    job: str | None = Field(default=None, description="Job run for an automated step.")
    owner: str | None = Field(
        default=None,
        description="Internal lane that records an external step's completion.",
    )

    @property
    def successors(self) -> tuple[str, ...]:
        if self.outcomes is not None:
            return tuple(target for target in self.outcomes.values() if target is not None)
        return (self.next,) if self.next is not None else ()

    @property
    def is_end(self) -> bool:
        if self.outcomes is not None:
            return any(target is None for target in self.outcomes.values())
        return self.next is None


class Role(_Frozen):
    id: str
    name: str
    reports_to: str | None = None
    external: bool = False
    description: str | None = None
    supervisor: bool = Field(
        default=False,
        description="Heads work (Kasubbag and above): sees the overview of open work.",
    )


class SopDefinition(_Frozen):
    code: str
    number: int
    title: str
    version: int
    legal_basis: tuple[str, ...]
    related: tuple[str, ...]
    warning: str
    qualifications: tuple[str, ...]
    equipment: tuple[str, ...]
    records: tuple[str, ...]
    lanes: tuple[str, ...]
    time_standard: TimeStandard | None = None
    requirements: tuple[str, ...] = ()
    output: str | None = None
    entry_points: tuple[str, ...]
    steps: tuple[Step, ...]
    notes: str | None = None
    source_note: str | None = None
    # The yearly review (docs/catalog.md): when the version took effect (None: from the
    # day it was loaded) and how many months after that, or after the last review, the
    # next review falls due.
    effective_date: date | None = None
    review_months: int = Field(default=DEFAULT_REVIEW_MONTHS, ge=1, le=MAX_REVIEW_MONTHS)

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def step_ids(self) -> Iterator[str]:
        return (step.id for step in self.steps)


class Catalog(_Frozen):
    """Every SOP (the versions found in one catalog directory) and the roles."""

    roles: tuple[Role, ...]
    sops: tuple[SopDefinition, ...]

    def role(self, role_id: str) -> Role:
        for role in self.roles:
            if role.id == role_id:
                return role
        raise KeyError(role_id)

    def sop(self, code: str) -> SopDefinition:
        for sop in self.sops:
            if sop.code == code:
                return sop
        raise KeyError(code)

    def escalation_chain(self, role_id: str) -> list[str]:
        """The roles above `role_id`, nearest first, following `reports_to`."""
        by_id = {role.id: role for role in self.roles}
        chain: list[str] = []
        current = by_id[role_id].reports_to
        while current is not None and current not in chain:
            chain.append(current)
            current = by_id[current].reports_to
        return chain
