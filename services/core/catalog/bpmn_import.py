"""`alur catalog import --bpmn FILE`: a BPMN 2.0 diagram drawn in bpmn.io or Camunda
Modeler as a catalog SOP file, with a marked `TODO` for every field BPMN cannot carry.

What is read (one pool; its lanes, tasks, exclusive gateways, start and end events and
sequence flows; everything else in the process, such as annotations, data objects and
extension attributes, is ignored):

* lanes -> role ids of roles.yaml, matched by name or id ignoring case, spaces and `_`;
  a lane that matches no role becomes `TODO`;
* `task`, `userTask`, `manualTask`, `sendTask` -> `task`, or `decision` when an
  exclusive gateway with named outgoing flows follows (the names become outcomes);
  `serviceTask`, `scriptTask`, `businessRuleTask` -> `automated` (`job: TODO`, outcomes
  too where a gateway follows); `receiveTask` -> `external` (`owner: TODO`);
* a gateway with one outgoing flow is a join and is passed through; an outcome or a
  flow that reaches an end event ends the procedure there (`null`);
* start events -> `entry_points`: blank ones first, then those with a definition
  (message, timer, ...), each in the order of the file;
* step numbers: a "N. " that opens every task's name (as Alur's own export writes it),
  otherwise the order of the flow, depth first from the start events; step ids: the id
  of Alur's export (`Task_<id>`), otherwise a slug of the name, made unique.

Refused, with the reason: a file that is not BPMN 2.0 XML or declares a DTD or entities
(parsed with defusedxml), several pools, parallel, inclusive, complex or event-based
gateways, sub-processes, call activities, intermediate or boundary events, and flows
the catalog cannot express (a task with several outgoing flows, an unnamed or repeated
outcome, a decision with no task before it, a decision after an external step).

Pure: bytes and roles in, text out.
"""

from __future__ import annotations

import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import defusedxml
import defusedxml.ElementTree

from services.core.catalog.bpmn import NAMESPACES
from services.core.engine.definition import Role, StepKind

_BPMN = "{" + NAMESPACES["bpmn"] + "}"
TODO = "TODO"

_TASKS = {
    "task": StepKind.TASK,
    "userTask": StepKind.TASK,
    "manualTask": StepKind.TASK,
    "sendTask": StepKind.TASK,
    "serviceTask": StepKind.AUTOMATED,
    "scriptTask": StepKind.AUTOMATED,
    "businessRuleTask": StepKind.AUTOMATED,
    "receiveTask": StepKind.EXTERNAL,
}
_REFUSED = {
    "parallelGateway": "a parallel gateway (the catalog's steps run one at a time)",
    "inclusiveGateway": "an inclusive gateway (the catalog's decisions take one outcome)",
    "complexGateway": "a complex gateway",
    "eventBasedGateway": "an event-based gateway",
    "subProcess": "a sub-process (draw its steps in the main process)",
    "adHocSubProcess": "an ad-hoc sub-process",
    "transaction": "a transaction",
    "callActivity": "a call activity",
    "intermediateCatchEvent": "an intermediate event",
    "intermediateThrowEvent": "an intermediate event",
    "boundaryEvent": "a boundary event",
}
_NUMBERED = re.compile(r"^\s*(\d{1,4})\s*[.)]\s+(\S.*)$", re.DOTALL)
_EXPORTED_ID = re.compile(r"^Task_([a-z][a-z0-9_]*)$")
_MAX_SLUG_WORDS = 4
_MAX_SLUG_LENGTH = 40


class BpmnRefused(ValueError):
    """The file is not BPMN the catalog can hold; the message says why."""


@dataclass(frozen=True)
class ImportedLane:
    name: str
    role: str | None  # None: no role of roles.yaml matches the name


@dataclass(frozen=True)
class ImportedStep:
    id: str
    number: int
    activity: str | None  # None: the task has no name
    lane: ImportedLane | None  # None: the task is in no lane
    kind: StepKind
    next: str | None = None
    outcomes: dict[str, str | None] | None = None
    documentation: str | None = None


@dataclass(frozen=True)
class ImportedSop:
    title: str | None
    lanes: tuple[ImportedLane, ...]
    entry_points: tuple[str, ...]
    steps: tuple[ImportedStep, ...]


@dataclass
class _Task:
    element_id: str
    tag: str
    name: str | None
    documentation: str | None
    lane: ImportedLane | None
    next: str | None = None  # element id of the next task
    outcomes: dict[str, str | None] | None = None
    has_outcomes: bool = False


@dataclass
class _Process:
    nodes: dict[str, ET.Element] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    outgoing: dict[str, list[str]] = field(default_factory=dict)
    flows: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)

    def describe(self, node_id: str) -> str:
        name = self.nodes[node_id].get("name")
        shown = f"{node_id} ({name.strip()!r})" if name and name.strip() else node_id
        return f"{_article(self.tags[node_id])} {self.tags[node_id]} {shown}"


def read_bpmn(data: bytes, roles: Sequence[Role]) -> ImportedSop:
    """The SOP drawn in `data`; raises `BpmnRefused` saying what the catalog cannot hold."""
    root = _parse(data)
    process, title = _the_process(root)
    graph = _graph(process)
    lanes, lane_of = _lanes(process, roles)
    tasks = {
        node_id: _Task(
            node_id,
            tag,
            _name(graph.nodes[node_id]),
            _documentation(graph.nodes[node_id]),
            lane_of.get(node_id),
        )
        for node_id, tag in graph.tags.items()
        if tag in _TASKS
    }
    if not tasks:
        raise BpmnRefused("the process has no task")
    for task in tasks.values():
        _successors(graph, task)
    entries = _entries(graph)
    numbers, activities = _numbers(tasks, entries)
    ids = _step_ids(tasks, numbers, activities)
    steps = []
    for node_id, task in tasks.items():
        kind = _TASKS[task.tag]
        if task.has_outcomes:
            if kind is StepKind.EXTERNAL:
                raise BpmnRefused(
                    f"{graph.describe(node_id)} is followed by a decision: the catalog's "
                    "external steps do not branch (make it a user task)"
                )
            if kind is StepKind.TASK:
                kind = StepKind.DECISION
        steps.append(
            ImportedStep(
                id=ids[node_id],
                number=numbers[node_id],
                activity=activities[node_id],
                lane=task.lane,
                kind=kind,
                next=ids[task.next] if task.next is not None else None,
                outcomes=(
                    {
                        label: ids[target] if target is not None else None
                        for label, target in task.outcomes.items()
                    }
                    if task.outcomes is not None
                    else None
                ),
                documentation=task.documentation,
            )
        )
    steps.sort(key=lambda step: step.number)
    return ImportedSop(
        title=title,
        lanes=tuple(lanes),
        entry_points=tuple(dict.fromkeys(ids[entry] for entry in entries)),
        steps=tuple(steps),
    )


def _parse(data: bytes) -> ET.Element:
    try:
        root = defusedxml.ElementTree.fromstring(data, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise BpmnRefused(
            f"the file declares a DTD or entities, which are refused ({exc})"
        ) from exc
    except ET.ParseError as exc:
        raise BpmnRefused(f"not XML: {exc}") from exc
    if root.tag != f"{_BPMN}definitions":
        raise BpmnRefused(
            f"not a BPMN 2.0 file: the document is <{_local(root.tag)}>, not <definitions> "
            f"in the namespace {NAMESPACES['bpmn']}"
        )
    return root


def _the_process(root: ET.Element) -> tuple[ET.Element, str | None]:
    participants = root.findall(f"{_BPMN}collaboration/{_BPMN}participant")
    if len(participants) > 1:
        names = ", ".join(repr(p.get("name") or p.get("id")) for p in participants)
        raise BpmnRefused(
            f"the file has {len(participants)} pools ({names}); a SOP is one pool with "
            "a lane per role"
        )
    processes = [
        process
        for process in root.findall(f"{_BPMN}process")
        if any(_local(child.tag) in {*_TASKS, "startEvent"} for child in process)
    ]
    if not processes:
        raise BpmnRefused("the file holds no process with a start event or a task")
    if len(processes) > 1:
        raise BpmnRefused(f"the file holds {len(processes)} processes; a SOP is one")
    (process,) = processes
    title = _name(participants[0]) if participants else None
    return process, title or _name(process)


def _graph(process: ET.Element) -> _Process:
    graph = _Process()
    for child in process:
        tag = _local(child.tag)
        if not child.tag.startswith(_BPMN):
            continue
        if tag in _REFUSED:
            raise BpmnRefused(
                f"the process has {_REFUSED[tag]}: {child.get('id')} "
                f"{_quoted_name(child)}; the catalog cannot express it"
            )
        if tag in _TASKS or tag in ("startEvent", "endEvent", "exclusiveGateway"):
            node_id = child.get("id") or ""
            graph.nodes[node_id] = child
            graph.tags[node_id] = tag
            graph.outgoing[node_id] = []
    for child in process.iterfind(f"{_BPMN}sequenceFlow"):
        flow_id = child.get("id") or ""
        source, target = child.get("sourceRef") or "", child.get("targetRef") or ""
        for end in (source, target):
            if end not in graph.nodes:
                raise BpmnRefused(
                    f"sequence flow {flow_id} connects {end or 'nothing'!r}, which is no "
                    "task, exclusive gateway or event of the process"
                )
        if graph.tags[target] == "startEvent":
            raise BpmnRefused(f"sequence flow {flow_id} leads into a start event")
        graph.flows[flow_id] = (source, target, _name(child))
        graph.outgoing[source].append(flow_id)
    return graph


def _lanes(
    process: ET.Element, roles: Sequence[Role]
) -> tuple[list[ImportedLane], dict[str, ImportedLane]]:
    """The leaf lanes in the file's order, each with its role, and each node's lane."""
    by_key: dict[str, str] = {}
    for role in roles:
        by_key.setdefault(_key(role.id), role.id)
        by_key.setdefault(_key(role.name), role.id)
    lanes: list[ImportedLane] = []
    lane_of: dict[str, ImportedLane] = {}

    def visit(lane_set: ET.Element) -> None:
        for element in lane_set.iterfind(f"{_BPMN}lane"):
            children = element.find(f"{_BPMN}childLaneSet")
            if children is not None and children.find(f"{_BPMN}lane") is not None:
                visit(children)
                continue
            name = _name(element) or element.get("id") or "?"
            lane = ImportedLane(name, by_key.get(_key(name)))
            if lane.role is None or all(known.role != lane.role for known in lanes):
                lanes.append(lane)
            else:  # two lanes of one role: one lane of the SOP
                lane = next(known for known in lanes if known.role == lane.role)
            for ref in element.iterfind(f"{_BPMN}flowNodeRef"):
                lane_of[(ref.text or "").strip()] = lane

    for lane_set in process.iterfind(f"{_BPMN}laneSet"):
        visit(lane_set)
    return lanes, lane_of


def _follow(graph: _Process, flow_id: str) -> tuple[str, str | None]:
    """Where a flow leads through joining gateways: ("task", id), ("end", None) or
    ("split", gateway id)."""
    seen: set[str] = set()
    while True:
        target = graph.flows[flow_id][1]
        tag = graph.tags[target]
        if tag in _TASKS:
            return "task", target
        if tag == "endEvent":
            return "end", None
        outgoing = graph.outgoing[target]
        if not outgoing:
            raise BpmnRefused(f"{graph.describe(target)} has no outgoing flow")
        if len(outgoing) > 1:
            return "split", target
        if target in seen:
            raise BpmnRefused(f"{graph.describe(target)} is in a loop of gateways alone")
        seen.add(target)
        flow_id = outgoing[0]


def _successors(graph: _Process, task: _Task) -> None:
    outgoing = graph.outgoing[task.element_id]
    if len(outgoing) > 1:
        raise BpmnRefused(
            f"{graph.describe(task.element_id)} has {len(outgoing)} outgoing flows: a step "
            "has one successor, or outcomes through an exclusive gateway with named flows"
        )
    if not outgoing:
        return
    kind, target = _follow(graph, outgoing[0])
    if kind == "task":
        task.next = target
    elif kind == "split" and target is not None:
        task.has_outcomes = True
        task.outcomes = {}
        for flow_id in graph.outgoing[target]:
            label = graph.flows[flow_id][2]
            if label is None:
                raise BpmnRefused(
                    f"sequence flow {flow_id} out of {graph.describe(target)} has no name: "
                    "name each outgoing flow of a decision with its outcome"
                )
            # Outcomes are snake_case identifiers (`tidak lengkap` -> `tidak_lengkap`).
            key = outcome_key(label)
            if not key:
                raise BpmnRefused(
                    f"sequence flow {flow_id} is named {label!r}, which holds no letter "
                    "to make an outcome of"
                )
            if key in task.outcomes:
                raise BpmnRefused(
                    f"{graph.describe(target)} has two outgoing flows named {label!r} "
                    f"(outcome {key!r})"
                )
            label = key
            outcome_kind, outcome_target = _follow(graph, flow_id)
            if outcome_kind == "split":
                raise BpmnRefused(
                    f"outcome {label!r} of {graph.describe(target)} leads to another "
                    "decision without a task between them"
                )
            task.outcomes[label] = outcome_target


def _entries(graph: _Process) -> list[str]:
    """The first task after each start event: blank start events first."""
    starts = [node_id for node_id, tag in graph.tags.items() if tag == "startEvent"]
    if not starts:
        raise BpmnRefused("the process has no start event")
    starts.sort(key=lambda node_id: _has_definition(graph.nodes[node_id]))
    entries = []
    for start in starts:
        outgoing = graph.outgoing[start]
        if len(outgoing) != 1:
            raise BpmnRefused(
                f"{graph.describe(start)} has {len(outgoing)} outgoing flows; it needs one"
            )
        kind, target = _follow(graph, outgoing[0])
        if kind != "task" or target is None:
            raise BpmnRefused(
                f"{graph.describe(start)} leads to "
                + ("an end" if kind == "end" else "a decision")
                + " without a task first"
            )
        entries.append(target)
    return entries


def _numbers(
    tasks: Mapping[str, _Task], entries: Sequence[str]
) -> tuple[dict[str, int], dict[str, str | None]]:
    """Each task's step number and activity (its name without the number)."""
    numbered = {node_id: _NUMBERED.match(task.name or "") for node_id, task in tasks.items()}
    given = [int(match.group(1)) for match in numbered.values() if match is not None]
    if len(given) == len(tasks) and len(set(given)) == len(given):
        return (
            {node_id: int(match.group(1)) for node_id, match in numbered.items() if match},
            {node_id: match.group(2).strip() for node_id, match in numbered.items() if match},
        )
    order: list[str] = []
    stack = list(reversed(entries))
    while stack:
        node_id = stack.pop()
        if node_id in order:
            continue
        order.append(node_id)
        task = tasks[node_id]
        following = (
            [target for target in task.outcomes.values() if target is not None]
            if task.outcomes is not None
            else [task.next]
            if task.next is not None
            else []
        )
        stack.extend(reversed(following))
    order += [node_id for node_id in tasks if node_id not in order]
    return (
        {node_id: index for index, node_id in enumerate(order, start=1)},
        {node_id: task.name for node_id, task in tasks.items()},
    )


def _step_ids(
    tasks: Mapping[str, _Task], numbers: Mapping[str, int], activities: Mapping[str, str | None]
) -> dict[str, str]:
    ids: dict[str, str] = {}
    for node_id in tasks:
        match = _EXPORTED_ID.match(node_id)
        if match is not None:
            ids[node_id] = match.group(1)
    used = set(ids.values())
    for node_id in sorted(tasks, key=lambda node_id: numbers[node_id]):
        if node_id in ids:
            continue
        base = slug(activities[node_id] or "") or f"langkah_{numbers[node_id]}"
        unique, suffix = base, 2
        while unique in used:
            unique, suffix = f"{base}_{suffix}", suffix + 1
        used.add(unique)
        ids[node_id] = unique
    return ids


def slug(text: str) -> str:
    """A step id from an activity: its first words, ASCII, lower case, `_` between."""
    text = "_".join(_words(text)[:_MAX_SLUG_WORDS])[:_MAX_SLUG_LENGTH].rstrip("_")
    return f"langkah_{text}" if text and not text[0].isalpha() else text


def outcome_key(label: str) -> str:
    """An outcome from a flow's name: all its words, ASCII, lower case, `_` between."""
    text = "_".join(_words(label))
    return f"hasil_{text}" if text and not text[0].isalpha() else text


def _words(text: str) -> list[str]:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.findall(r"[a-z0-9]+", ascii_text.lower())


# --- The YAML ------------------------------------------------------------------------


def to_yaml(
    sop: ImportedSop, *, source: str, code: str | None = None, number: int | None = None
) -> str:
    """The catalog file: every field BPMN cannot carry is `TODO` with a `# TODO:` comment,
    which `alur catalog validate` reports by file and line until it is filled in."""
    lines = [
        f"# Imported from {source} by `alur catalog import`. Replace every TODO (the",
        "# comment beside it says what goes there), then run `alur catalog validate`,",
        "# which lists those left by line. The fields follow the SOP document (docs/catalog.md).",
        _field("code", code, "the SOP's code: lowercase letters, digits and dashes"),
        _field("number", number, "its number in the catalog"),
        _field("title", sop.title, "its name as the SOP document writes it"),
        "version: 1",
        _field("legal_basis", None, "A. Dasar Hukum: a list"),
        _field("related", None, "B. Keterkaitan: a list of related SOPs ([] for none)"),
        _field("warning", None, "C. Peringatan"),
        _field("qualifications", None, "D. Kualifikasi Pelaksana: a list"),
        _field("equipment", None, "E. Peralatan/Perlengkapan: a list"),
        _field("records", None, "F. Pencatatan dan Pendataan: a list"),
        "# Optional for the whole SOP: time_standard, requirements, output (see docs/catalog.md).",
        "lanes:",
    ]
    for lane in sop.lanes:
        if lane.role is not None:
            lines.append(f"  - {lane.role}  # lane {_text(lane.name)}")
        else:
            lines.append(
                f"  - {TODO}  # TODO: lane {_text(lane.name)} matches no role of "
                "roles.yaml: a role id (add the role there if it is new)"
            )
    if any(step.lane is None for step in sop.steps):
        lines.append(f"  - {TODO}  # TODO: the role of the steps drawn outside any lane")
    lines.append(f"entry_points: [{', '.join(sop.entry_points)}]")
    lines.append("steps:")
    for step in sop.steps:
        lines.extend(_step(step))
    return "\n".join(lines) + "\n"


def _step(step: ImportedStep) -> Iterable[str]:
    for line in (step.documentation or "").splitlines():
        if line.strip():
            yield f"  # BPMN documentation: {line.strip()}"
    yield f"  - id: {step.id}"
    yield f"    number: {step.number}"
    yield "    " + _field("activity", step.activity, "the task has no name: its activity")
    if step.lane is None:
        yield f"    lane: {TODO}  # TODO: the task is in no lane: its role id"
    elif step.lane.role is None:
        yield f"    lane: {TODO}  # TODO: lane {_text(step.lane.name)}: a role id"
    else:
        yield f"    lane: {step.lane.role}"
    yield f"    kind: {step.kind.value}"
    if step.kind is StepKind.AUTOMATED:
        yield "    " + _field("job", None, "the job the worker runs for this step")
    if step.kind is StepKind.EXTERNAL:
        yield "    " + _field("owner", None, "the internal role that records its completion")
    yield "    " + _field("requirements", None, "kelengkapan: a list ([] for none)")
    yield "    " + _field(
        "time_standard",
        None,
        "waktu: {source_text: as written, min: P1D, max: P1D, basis: working}",
    )
    yield "    " + _field("output", None, "output")
    if step.outcomes is not None:
        yield "    outcomes:"
        for label, target in step.outcomes.items():
            yield f"      {label}: {target if target is not None else 'null'}"
    elif step.next is not None:
        yield f"    next: {step.next}"


def _field(key: str, value: str | int | None, todo: str) -> str:
    if value is None:
        return f"{key}: {TODO}  # TODO: {todo}"
    return f"{key}: {value if isinstance(value, int) else _text(value)}"


def _text(value: str) -> str:
    # JSON strings are YAML strings: any text is safe quoted so.
    return json.dumps(value, ensure_ascii=False)


# --- Small helpers -------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _name(element: ET.Element) -> str | None:
    name = (element.get("name") or "").strip()
    return name or None


def _quoted_name(element: ET.Element) -> str:
    name = _name(element)
    return f"({name!r})" if name else ""


def _documentation(element: ET.Element) -> str | None:
    text = "\n".join(
        (item.text or "").strip() for item in element.iterfind(f"{_BPMN}documentation")
    )
    return text.strip() or None


def _has_definition(element: ET.Element) -> bool:
    return any(_local(child.tag).endswith("EventDefinition") for child in element)


def _key(text: str) -> str:
    return re.sub(r"[\s_]+", "", text).casefold()


def _article(tag: str) -> str:
    return "an" if tag[0] in "aeiou" else "a"
