"""Cross-reference and graph checks of the catalog that a JSON Schema cannot express.

The checks read the raw YAML data, which may be malformed (the schema reports that), so
every access is defensive: a value of the wrong type is skipped here, never trusted.
A `Finding` names the offending node by its path; the loader turns it into a file and line.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.core.engine.durations import Duration, is_iso_duration

NodePath = tuple[str | int, ...]

# What `alur catalog import` writes for a field a BPMN file cannot carry.
TODO = "TODO"

# Steps of these kinds may branch: a decision always, an automated check on its result.
_BRANCHING_KINDS = ("decision", "automated")


@dataclass(frozen=True)
class Finding:
    path: NodePath
    message: str


@dataclass(frozen=True)
class RoleIndex:
    """The roles known from roles.yaml: id -> whether the role is external."""

    external: Mapping[str, bool]

    def names(self, *, external: bool) -> str:
        return ", ".join(sorted(rid for rid, ext in self.external.items() if ext == external))


def _items(value: Any) -> list[tuple[int, Any]]:
    return list(enumerate(value)) if isinstance(value, list) else []


def _mappings(value: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    return ((i, item) for i, item in _items(value) if isinstance(item, Mapping))


def _text(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return value if isinstance(value, str) else None


def _integer(mapping: Mapping[str, Any], key: str) -> int | None:
    value = mapping.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_roles(document: Any) -> tuple[list[Finding], RoleIndex]:
    """Check roles.yaml: unique ids, known `reports_to`, no escalation cycle."""
    findings: list[Finding] = []
    roles = list(_mappings(document.get("roles") if isinstance(document, Mapping) else None))
    first_index: dict[str, int] = {}
    external: dict[str, bool] = {}
    for index, role in roles:
        role_id = _text(role, "id")
        if role_id is None:
            continue
        if role_id in first_index:
            findings.append(
                Finding(
                    ("roles", index, "id"),
                    f"duplicate role id {role_id!r} (also used by roles[{first_index[role_id]}])",
                )
            )
            continue
        first_index[role_id] = index
        external[role_id] = role.get("external") is True

    reports_to: dict[str, str] = {}
    for index, role in roles:
        role_id, boss = _text(role, "id"), _text(role, "reports_to")
        if role_id is None or boss is None or first_index.get(role_id) != index:
            continue
        if boss not in external:
            findings.append(
                Finding(
                    ("roles", index, "reports_to"),
                    f"reports_to {boss!r} is not a role in roles.yaml",
                )
            )
        else:
            reports_to[role_id] = boss
    findings.extend(_reporting_cycles(reports_to, first_index))
    return findings, RoleIndex(external)


def _reporting_cycles(
    reports_to: Mapping[str, str], first_index: Mapping[str, int]
) -> list[Finding]:
    """One finding per cycle, at the cycle's role that comes first in the file."""
    findings: list[Finding] = []
    reported: set[frozenset[str]] = set()
    for start in reports_to:
        chain = [start]
        while (boss := reports_to.get(chain[-1])) is not None and boss not in chain:
            chain.append(boss)
        if boss is None:
            continue
        cycle = chain[chain.index(boss) :]
        if frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        first = min(cycle, key=lambda role_id: first_index[role_id])
        at = cycle.index(first)
        loop = [*cycle[at:], *cycle[:at], first]
        findings.append(
            Finding(
                ("roles", first_index[first], "reports_to"),
                f"reports_to forms a cycle: {' -> '.join(loop)}",
            )
        )
    return findings


def check_sop(document: Any, roles: RoleIndex | None) -> list[Finding]:
    """Check one SOP's lanes, steps and flow graph; `roles` is None when roles.yaml is broken."""
    if not isinstance(document, Mapping):
        return []
    findings: list[Finding] = []
    lanes = [lane for _, lane in _items(document.get("lanes")) if isinstance(lane, str)]
    if roles is not None:
        for index, lane in _items(document.get("lanes")):
            if isinstance(lane, str) and lane not in roles.external:
                findings.append(
                    Finding(("lanes", index), f"lane {lane!r} is not a role in roles.yaml")
                )

    steps = list(_mappings(document.get("steps")))
    step_ids = _unique_steps(steps, "id", findings)
    _unique_steps(steps, "number", findings)
    for index, step in steps:
        findings.extend(_check_step(("steps", index), step, lanes, set(step_ids), roles))

    entry_points: list[str] = []
    for index, entry in _items(document.get("entry_points")):
        if not isinstance(entry, str):
            continue
        if entry in step_ids:
            entry_points.append(entry)
        else:
            findings.append(
                Finding(("entry_points", index), f"entry point {entry!r} is not a step of this SOP")
            )
    findings.extend(_unreachable(steps, step_ids, entry_points))
    findings.extend(_time_standard_range(("time_standard",), document.get("time_standard")))
    findings.extend(_calendar_date(("effective_date",), document.get("effective_date")))
    return findings


def _calendar_date(path: NodePath, value: Any) -> Iterator[Finding]:
    """A date the schema's pattern let through that no calendar has (2026-02-30)."""
    if isinstance(value, str) and len(value) == 10 and value[:4].isdigit():
        try:
            date.fromisoformat(value)
        except ValueError:
            yield Finding(path, f"{value!r} is not a date of the calendar")


def _unique_steps(
    steps: Sequence[tuple[int, Mapping[str, Any]]], key: str, findings: list[Finding]
) -> dict[Any, int]:
    """Map each step `key` value to the index of its first step; flag later duplicates."""
    first: dict[Any, int] = {}
    for index, step in steps:
        value = _text(step, key) if key == "id" else _integer(step, key)
        if value is None:
            continue
        if value in first:
            findings.append(
                Finding(
                    ("steps", index, key),
                    f"duplicate step {key} {value!r} (also used by steps[{first[value]}])",
                )
            )
        else:
            first[value] = index
    return first


def _check_step(
    path: NodePath,
    step: Mapping[str, Any],
    lanes: Sequence[str],
    step_ids: set[str],
    roles: RoleIndex | None,
) -> Iterator[Finding]:
    step_id, lane, kind = _text(step, "id"), _text(step, "lane"), _text(step, "kind")
    name = f"step {step_id!r}" if step_id else "step"
    if lane is not None and lane not in lanes:
        yield Finding(
            (*path, "lane"),
            f"lane {lane!r} is not one of the SOP's lanes ({', '.join(lanes) or 'none'})",
        )
        # A lane listed in `lanes` is checked against roles.yaml there, once.
        if roles is not None and lane not in roles.external:
            yield Finding((*path, "lane"), f"lane {lane!r} is not a role in roles.yaml")

    outcomes = step.get("outcomes")
    if outcomes is not None and kind in ("task", "external"):
        yield Finding(
            (*path, "outcomes"),
            f"a {kind} step cannot have outcomes; only decision and automated steps branch",
        )
    if kind == "decision" and (not isinstance(outcomes, Mapping) or len(outcomes) < 2):
        count = len(outcomes) if isinstance(outcomes, Mapping) else 0
        yield Finding(
            (*path, "outcomes"),
            f"decision {name} has {count} outcome(s); a decision needs at least two",
        )

    job = step.get("job")
    if kind == "automated" and not job:
        yield Finding((*path, "job"), f"automated {name} has no job: name the job that runs it")
    if job is not None and kind in ("task", "decision", "external"):
        yield Finding((*path, "job"), f"only automated steps run a job; this step is a {kind}")

    owner = step.get("owner")
    if kind == "external":
        yield from _check_external(path, name, lane, owner, roles)
    elif owner is not None and kind is not None:
        yield Finding((*path, "owner"), f"only external steps have an owner; this step is a {kind}")

    target = step.get("next")
    if isinstance(target, str) and target not in step_ids:
        yield Finding((*path, "next"), f"next step {target!r} is not a step of this SOP")
    if isinstance(outcomes, Mapping):
        for label, target in outcomes.items():
            if isinstance(target, str) and target not in step_ids:
                yield Finding(
                    (*path, "outcomes", label),
                    f"outcome {label!r} leads to {target!r}, which is not a step of this SOP",
                )
    yield from _time_standard_range((*path, "time_standard"), step.get("time_standard"))


def _check_external(
    path: NodePath, name: str, lane: str | None, owner: Any, roles: RoleIndex | None
) -> Iterator[Finding]:
    if roles is not None and lane is not None and roles.external.get(lane) is False:
        yield Finding(
            (*path, "lane"),
            f"external {name} is in lane {lane!r}, which is not an external role "
            f"(external roles: {roles.names(external=True) or 'none'})",
        )
    if not owner:
        yield Finding(
            (*path, "owner"),
            f"external {name} has no owner: name the internal role that records its completion",
        )
    elif isinstance(owner, str) and roles is not None:
        if owner not in roles.external:
            yield Finding((*path, "owner"), f"owner {owner!r} is not a role in roles.yaml")
        elif roles.external[owner]:
            yield Finding(
                (*path, "owner"),
                f"owner {owner!r} is an external role; the owner must be an internal role",
            )


def _unreachable(
    steps: Sequence[tuple[int, Mapping[str, Any]]],
    step_ids: Mapping[Any, int],
    entry_points: Sequence[str],
) -> Iterator[Finding]:
    # Without a valid entry point every step would be reported: the entry point error suffices.
    if not entry_points:
        return
    successors: dict[str, list[str]] = {}
    for _, step in steps:
        step_id = _text(step, "id")
        if step_id is None:
            continue
        outcomes = step.get("outcomes")
        targets = list(outcomes.values()) if isinstance(outcomes, Mapping) else [step.get("next")]
        successors.setdefault(step_id, []).extend(t for t in targets if isinstance(t, str))
    reached = set(entry_points)
    queue = deque(entry_points)
    while queue:
        for target in successors.get(queue.popleft(), []):
            if target not in reached:
                reached.add(target)
                queue.append(target)
    for index, step in steps:
        step_id = _text(step, "id")
        if step_id is not None and step_id not in reached and step_ids.get(step_id) == index:
            yield Finding(
                ("steps", index),
                f"step {step_id!r} is not reachable from any entry point "
                f"({', '.join(entry_points)})",
            )


def _time_standard_range(path: NodePath, standard: Any) -> Iterator[Finding]:
    if not isinstance(standard, Mapping):
        return
    low, high = standard.get("min"), standard.get("max")
    if not (isinstance(low, str) and isinstance(high, str)):
        return
    if not (is_iso_duration(low) and is_iso_duration(high)):
        return
    shortest, longest = Duration.parse(low), Duration.parse(high)
    # Days and hours are not comparable (a working day is not 24 hours), so only a min
    # that is at least as long in both parts, and longer in one, is certainly wrong.
    if (
        shortest != longest
        and shortest.days >= longest.days
        and shortest.seconds >= longest.seconds
    ):
        yield Finding((*path, "min"), f"min {low!r} is longer than max {high!r}")


def check_unique_sops(documents: Sequence[tuple[str, Any]]) -> Iterator[tuple[int, Finding]]:
    """Flag a SOP `code` or `number` already defined by an earlier file (by position)."""
    for key in ("code", "number"):
        first: dict[Any, str] = {}
        for position, (file, document) in enumerate(documents):
            if not isinstance(document, Mapping):
                continue
            value = _text(document, key) if key == "code" else _integer(document, key)
            if value is None:
                continue
            if value in first:
                yield (
                    position,
                    Finding((key,), f"SOP {key} {value!r} is already defined in {first[value]}"),
                )
            else:
                first[value] = file


def check_todos(document: Any, path: NodePath = ()) -> Iterator[Finding]:
    """Every value that is exactly `TODO`: a placeholder left to fill in (the problems
    its value would otherwise raise, a wrong type or an unknown role, are not reported
    apart: the loader leaves them out)."""
    if isinstance(document, Mapping):
        for key, value in document.items():
            yield from check_todos(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from check_todos(value, (*path, index))
    elif isinstance(document, str) and document.strip() == TODO:
        yield Finding(path, "TODO: fill in this value (the comment beside it says what it holds)")
