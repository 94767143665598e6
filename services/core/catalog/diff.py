"""What changed between two versions of a SOP, step by step (`alur catalog diff`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.core.engine.definition import SopDefinition, Step

# The fields of a step whose change matters to the people doing it, in reading order.
STEP_FIELDS = (
    "number", "activity", "lane", "kind", "owner", "requirements", "output",
    "time_standard", "next", "outcomes", "job",
)  # fmt: skip
SOP_FIELDS = (
    "title", "number", "lanes", "entry_points", "time_standard", "legal_basis",
    "qualifications", "related", "equipment", "warning", "records", "requirements", "output",
)  # fmt: skip


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class StepDiff:
    step_id: str
    status: str  # "added", "removed", "changed"
    changes: tuple[Change, ...] = ()


@dataclass(frozen=True)
class SopDiff:
    code: str
    from_version: int
    to_version: int
    sop: tuple[Change, ...]
    steps: tuple[StepDiff, ...]

    @property
    def empty(self) -> bool:
        return not self.sop and not self.steps


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return getattr(value, "value", value)


def _changes(before: object, after: object, fields: tuple[str, ...]) -> tuple[Change, ...]:
    found = []
    for name in fields:
        old, new = _plain(getattr(before, name)), _plain(getattr(after, name))
        if old != new:
            found.append(Change(name, old, new))
    return tuple(found)


def diff(old: SopDefinition, new: SopDefinition) -> SopDiff:
    old_steps: dict[str, Step] = {step.id: step for step in old.steps}
    new_steps: dict[str, Step] = {step.id: step for step in new.steps}
    steps = []
    for step in new.steps:
        before = old_steps.get(step.id)
        if before is None:
            steps.append(StepDiff(step.id, "added"))
        else:
            changes = _changes(before, step, STEP_FIELDS)
            if changes:
                steps.append(StepDiff(step.id, "changed", changes))
    steps += [StepDiff(step.id, "removed") for step in old.steps if step.id not in new_steps]
    return SopDiff(
        code=new.code,
        from_version=old.version,
        to_version=new.version,
        sop=_changes(old, new, SOP_FIELDS),
        steps=tuple(steps),
    )


def as_text(found: SopDiff, old: SopDefinition, new: SopDefinition) -> str:
    """A reading of the diff for people: one block per changed step."""
    lines = [f"SOP {found.code}: version {found.from_version} -> {found.to_version}"]
    if found.empty:
        lines.append("  no change")
    for change in found.sop:
        lines.append(f"  {change.field}: {change.before!r} -> {change.after!r}")
    olds = {step.id: step for step in old.steps}
    news = {step.id: step for step in new.steps}
    for step in found.steps:
        if step.status == "added":
            added = news[step.step_id]
            lines.append(f"+ step {added.number} {step.step_id}: {added.activity} [{added.lane}]")
        elif step.status == "removed":
            removed = olds[step.step_id]
            lines.append(
                f"- step {removed.number} {step.step_id}: {removed.activity} [{removed.lane}]"
            )
        else:
            lines.append(f"~ step {news[step.step_id].number} {step.step_id}")
            lines += [
                f"    {change.field}: {change.before!r} -> {change.after!r}"
                for change in step.changes
            ]
    return "\n".join(lines)
