"""The Mermaid and BPMN renderings of every catalog SOP, checked against real consumers.

BPMN is validated with the BPMN 2.0 XSD and loaded by SpiffWorkflow's parser (the
same documents bpmn.io opens); the layout is checked geometrically: shapes inside their
lane's band, orthogonal edges from border to border.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import SpiffWorkflow.bpmn.parser as spiff_parser
from lxml import etree  # no stubs installed
from ruamel.yaml import YAML
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn.specs.defaults import ReceiveTask, ServiceTask, UserTask
from SpiffWorkflow.util.task import TaskState

from services.core.catalog.bpmn import NAMESPACES, process_id, task_id, to_bpmn
from services.core.catalog.mermaid import (
    END_NODE,
    LABEL_WIDTH,
    escape_label,
    lane_subgraph_id,
    step_node_id,
    to_mermaid,
    wrap_label,
)
from services.core.engine.definition import Role, SopDefinition, StepKind

CATALOG = Path(__file__).resolve().parents[2] / "sop_catalog"
SOP_FILES = sorted(CATALOG.glob("[0-9][0-9]-*.yaml"))

BPMN = "{" + NAMESPACES["bpmn"] + "}"
TASK_TAGS = {
    StepKind.TASK: "userTask",
    StepKind.DECISION: "userTask",
    StepKind.AUTOMATED: "serviceTask",
    StepKind.EXTERNAL: "receiveTask",
}
SPIFF_CLASSES = {
    StepKind.TASK: UserTask,
    StepKind.DECISION: UserTask,
    StepKind.AUTOMATED: ServiceTask,
    StepKind.EXTERNAL: ReceiveTask,
}
FLOW_NODE_TAGS = {"startEvent", "endEvent", "exclusiveGateway", *TASK_TAGS.values()}


def _yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def roles() -> dict[str, Role]:
    document = _yaml(CATALOG / "roles.yaml")
    return {role.id: role for role in map(Role.model_validate, document["roles"])}


@cache
def _schema() -> etree.XMLSchema:
    # BPMN20.xsd includes its siblings (Semantic, BPMNDI, DC, DI) by relative path,
    # so it is parsed from its file in the installed package.
    xsd = Path(spiff_parser.__file__).parent / "schema" / "BPMN20.xsd"
    return etree.XMLSchema(etree.parse(str(xsd)))


def _load(path: Path) -> SopDefinition:
    return SopDefinition.model_validate(_yaml(path))


def _used_lanes(sop: SopDefinition) -> list[str]:
    used = {step.lane for step in sop.steps}
    return [lane for lane in sop.lanes if lane in used]


# --- BPMN helpers ------------------------------------------------------------------------


class _Bpmn:
    """The parts of a rendered document the assertions need, indexed by id."""

    def __init__(self, xml: str) -> None:
        self.root = etree.fromstring(xml.encode("utf-8"))
        (self.process,) = self.root.iterfind(f"{BPMN}process")
        self.nodes = {
            element.get("id"): element
            for element in self.process
            if etree.QName(element).localname in FLOW_NODE_TAGS
        }
        self.flows = {
            element.get("id"): element for element in self.process.iterfind(f"{BPMN}sequenceFlow")
        }
        self.lanes = {
            lane.get("id"): lane for lane in self.process.iterfind(f"{BPMN}laneSet/{BPMN}lane")
        }
        self.lane_of = {
            ref.text: lane_id
            for lane_id, lane in self.lanes.items()
            for ref in lane.iterfind(f"{BPMN}flowNodeRef")
        }
        self.shapes = {
            shape.get("bpmnElement"): shape
            for shape in self.root.iterfind(".//bpmndi:BPMNShape", NAMESPACES)
        }
        self.edges = {
            edge.get("bpmnElement"): edge
            for edge in self.root.iterfind(".//bpmndi:BPMNEdge", NAMESPACES)
        }

    def tag(self, node_id: str) -> str:
        return str(etree.QName(self.nodes[node_id]).localname)

    def bounds(self, element_id: str) -> tuple[float, float, float, float]:
        box = self.shapes[element_id].find("dc:Bounds", NAMESPACES)
        assert box is not None
        x, y, width, height = (float(box.get(key)) for key in ("x", "y", "width", "height"))
        return x, y, width, height

    def waypoints(self, flow_id: str) -> list[tuple[float, float]]:
        return [
            (float(point.get("x")), float(point.get("y")))
            for point in self.edges[flow_id].iterfind("di:waypoint", NAMESPACES)
        ]

    def outgoing(self, node_id: str) -> list[etree._Element]:
        return [flow for flow in self.flows.values() if flow.get("sourceRef") == node_id]

    def refs(self, node_id: str, direction: str) -> list[str]:
        return [ref.text or "" for ref in self.nodes[node_id].iterfind(f"{BPMN}{direction}")]


def _on_border(
    tag: str, bounds: tuple[float, float, float, float], point: tuple[float, float]
) -> bool:
    x, y, width, height = bounds
    px, py = point
    cx, cy = x + width / 2, y + height / 2
    if tag in {"startEvent", "endEvent"}:
        return math.isclose(math.hypot(px - cx, py - cy), width / 2, abs_tol=0.5)
    if tag == "exclusiveGateway":
        return math.isclose(abs(px - cx) / (width / 2) + abs(py - cy) / (height / 2), 1.0)
    on_vertical_side = px in (x, x + width) and y <= py <= y + height
    on_horizontal_side = py in (y, y + height) and x <= px <= x + width
    return on_vertical_side or on_horizontal_side


def _inside(inner: tuple[float, ...], outer: tuple[float, ...]) -> bool:
    ix, iy, iw, ih = inner
    ox, oy, ow, oh = outer
    return ox <= ix and oy <= iy and ix + iw <= ox + ow and iy + ih <= oy + oh


def _overlap(first: tuple[float, ...], second: tuple[float, ...]) -> bool:
    ax, ay, aw, ah = first
    bx, by, bw, bh = second
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def _crosses(
    segment: tuple[tuple[float, float], tuple[float, float]],
    bounds: tuple[float, float, float, float],
) -> bool:
    """Whether an axis-parallel segment enters the inside of a shape's bounds."""
    (x1, y1), (x2, y2) = segment
    x, y, width, height = bounds
    low_x, high_x = sorted((x1, x2))
    low_y, high_y = sorted((y1, y2))
    if y1 == y2:
        return y < y1 < y + height and low_x < x + width and high_x > x
    return x < x1 < x + width and low_y < y + height and high_y > y


def _check_bpmn_structure(sop: SopDefinition, roles: dict[str, Role], doc: _Bpmn) -> None:
    lanes = _used_lanes(sop)
    assert [lane.get("name") for lane in doc.lanes.values()] == [roles[lane].name for lane in lanes]
    assert sorted(doc.lane_of) == sorted(doc.nodes), "every flow node is in exactly one lane"

    lane_by_name = {lane.get("name"): lane_id for lane_id, lane in doc.lanes.items()}
    lane_by_role = {lane: lane_by_name[roles[lane].name] for lane in lanes}
    tags = Counter(doc.tag(node_id) for node_id in doc.nodes)
    decisions = [step for step in sop.steps if step.outcomes is not None]
    null_outcomes = sum(
        1 for step in decisions for target in (step.outcomes or {}).values() if target is None
    )
    plain_ends = sum(1 for step in sop.steps if step.outcomes is None and step.next is None)
    kinds = Counter(TASK_TAGS[step.kind] for step in sop.steps)
    # Steps reached from more than one place get a joining gateway before them.
    arrivals = Counter(sop.entry_points)
    for step in sop.steps:
        targets = list((step.outcomes or {}).values()) if step.outcomes else [step.next]
        arrivals.update(t for t in targets if t is not None)
    joins = sum(1 for step in sop.steps if arrivals[step.id] >= 2)
    assert tags == Counter(
        {
            **kinds,
            "startEvent": len(sop.entry_points),
            "exclusiveGateway": len(decisions) + joins,
            "endEvent": null_outcomes + plain_ends,
        }
    )
    expected_flows = (
        len(sop.entry_points)
        + joins
        + sum(1 + len(step.outcomes) if step.outcomes is not None else 1 for step in sop.steps)
    )
    assert len(doc.flows) == expected_flows

    def reaches(source_target: str, step_id: str) -> bool:
        """The flow's target is the step's task, or the joining gateway before it."""
        if source_target == task_id(step_id):
            return True
        if doc.tag(source_target) != "exclusiveGateway" or doc.nodes[source_target].get("name"):
            return False
        (onward,) = doc.outgoing(source_target)
        return bool(onward.get("targetRef") == task_id(step_id))

    for entry in sop.entry_points:
        starts = [f for f in doc.flows.values() if reaches(f.get("targetRef"), entry)]
        assert any(doc.tag(flow.get("sourceRef")) == "startEvent" for flow in starts)
    blank = [n for n in doc.nodes if doc.tag(n) == "startEvent" and len(doc.nodes[n]) == 1]
    assert len(blank) == 1, "one blank start event; the other entries start on a message"

    for step in sop.steps:
        node_id = task_id(step.id)
        assert doc.tag(node_id) == TASK_TAGS[step.kind]
        assert doc.nodes[node_id].get("name") == f"{step.number}. {step.activity}"
        assert doc.lane_of[node_id] == lane_by_role[step.lane]
        (out,) = doc.outgoing(node_id)  # SpiffWorkflow allows one flow out of a task
        target = out.get("targetRef")
        if step.outcomes is not None:
            assert doc.tag(target) == "exclusiveGateway"
            assert doc.lane_of[target] == lane_by_role[step.lane]
            branches = {flow.get("name"): flow for flow in doc.outgoing(target)}
            assert sorted(branches) == sorted(step.outcomes)
            for outcome, successor in step.outcomes.items():
                flow = branches[outcome]
                condition = flow.find(f"{BPMN}conditionExpression")
                assert condition is not None
                assert condition.text == f'outcome == "{outcome}"'
                if successor is None:
                    assert doc.tag(flow.get("targetRef")) == "endEvent"
                else:
                    assert reaches(flow.get("targetRef"), successor)
        elif step.next is not None:
            assert reaches(target, step.next)
        else:
            assert doc.tag(target) == "endEvent"

    for node_id in doc.nodes:
        incoming = [f for f, flow in doc.flows.items() if flow.get("targetRef") == node_id]
        outgoing = [f for f, flow in doc.flows.items() if flow.get("sourceRef") == node_id]
        assert doc.refs(node_id, "incoming") == incoming
        assert doc.refs(node_id, "outgoing") == outgoing


def _check_bpmn_diagram(doc: _Bpmn) -> None:
    (participant,) = doc.root.iterfind(f"{BPMN}collaboration/{BPMN}participant")
    (plane,) = doc.root.iterfind(".//bpmndi:BPMNPlane", NAMESPACES)
    (collaboration,) = doc.root.iterfind(f"{BPMN}collaboration")
    assert plane.get("bpmnElement") == collaboration.get("id")
    assert participant.get("processRef") == doc.process.get("id")

    expected_shapes = {participant.get("id"), *doc.lanes, *doc.nodes}
    assert set(doc.shapes) == expected_shapes
    assert set(doc.edges) == set(doc.flows)

    pool = doc.bounds(participant.get("id"))
    bands = [doc.bounds(lane_id) for lane_id in doc.lanes]
    for lane_id, band in zip(doc.lanes, bands, strict=True):
        assert doc.shapes[lane_id].get("isHorizontal") == "true"
        assert _inside(band, pool)
    for upper, lower in itertools.pairwise(bands):
        assert upper[1] + upper[3] == lower[1], "lanes are stacked bands without gaps"

    for node_id in doc.nodes:
        assert _inside(doc.bounds(node_id), doc.bounds(doc.lane_of[node_id])), node_id
    node_ids = sorted(doc.nodes)
    for index, first in enumerate(node_ids):
        for second in node_ids[index + 1 :]:
            assert not _overlap(doc.bounds(first), doc.bounds(second)), (first, second)

    for flow_id, flow in doc.flows.items():
        points = doc.waypoints(flow_id)
        assert len(points) >= 2
        for (x1, y1), (x2, y2) in itertools.pairwise(points):
            assert x1 == x2 or y1 == y2, f"{flow_id} has a diagonal segment"
        for segment in itertools.pairwise(points):
            crossed = [node for node in node_ids if _crosses(segment, doc.bounds(node))]
            assert not crossed, f"{flow_id} runs through {crossed}"
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        assert _on_border(doc.tag(source), doc.bounds(source), points[0]), flow_id
        assert _on_border(doc.tag(target), doc.bounds(target), points[-1]), flow_id


def _check_spiff(sop: SopDefinition, roles: dict[str, Role], xml: str) -> Any:
    parser = BpmnParser()
    parser.add_bpmn_str(xml.encode("utf-8"))
    spec = parser.get_spec(process_id(sop))
    for step in sop.steps:
        task_spec = spec.task_specs[task_id(step.id)]
        assert isinstance(task_spec, SPIFF_CLASSES[step.kind])
        assert task_spec.lane == roles[step.lane].name
    return spec


# --- Mermaid helpers ---------------------------------------------------------------------

_SUBGRAPH = re.compile(r'^\s*subgraph (\S+) \["(.*)"\]$')
_NODE = re.compile(r'^\s*(step_\w+)(\[\[|\(\[|\[|\{)"(.*)"(\]\]|\]\)|\]|\}):::(\w+)$')
_EDGE = re.compile(r'^\s*(\S+?)(?:\(\("[^"]*"\)\):::\w+)? -->(?:\|"(.*)"\|)? (\S+)$')


def _parse_mermaid(
    text: str,
) -> tuple[
    list[str], dict[str, str], dict[str, tuple[str, str, str]], Counter[tuple[str, str | None, str]]
]:
    """Subgraph order, step node -> subgraph, node -> (shape, label, class), edges."""
    subgraphs: list[str] = []
    placement: dict[str, str] = {}
    nodes: dict[str, tuple[str, str, str]] = {}
    edges: Counter[tuple[str, str | None, str]] = Counter()
    current: str | None = None
    for line in text.splitlines():
        if match := _SUBGRAPH.match(line):
            current = match.group(1)
            subgraphs.append(current)
        elif line.strip() == "end":
            current = None
        elif match := _NODE.match(line):
            node_id, opening, label, _, css_class = match.groups()
            assert node_id not in nodes, f"{node_id} declared twice"
            nodes[node_id] = (opening, label, css_class)
            if current is not None:
                placement[node_id] = current
        elif match := _EDGE.match(line):
            source, label, target = match.groups()
            edges[(source, label, target)] += 1
    return subgraphs, placement, nodes, edges


def _check_mermaid(sop: SopDefinition, roles: dict[str, Role], text: str) -> None:
    assert text.startswith("flowchart TB\n")
    subgraphs, placement, nodes, edges = _parse_mermaid(text)
    lanes = _used_lanes(sop)
    assert subgraphs == [lane_subgraph_id(lane) for lane in lanes]
    for lane in lanes:
        assert f'subgraph {lane_subgraph_id(lane)} ["{escape_label(roles[lane].name)}"]' in text

    expected: Counter[tuple[str, str | None, str]] = Counter()
    for index, entry in enumerate(sop.entry_points, start=1):
        expected[(f"start_{index}", None, step_node_id(entry))] += 1
    for step in sop.steps:
        node = step_node_id(step.id)
        assert placement[node] == lane_subgraph_id(step.lane)
        opening, label, css_class = nodes[node]
        assert css_class == step.kind.value
        wrapped = wrap_label(f"{step.number}.\u00a0{step.activity}")
        assert label == escape_label(wrapped)
        # Lines of a readable width; only a single word longer than that stands alone.
        assert all(len(line) <= LABEL_WIDTH or " " not in line for line in wrapped.splitlines())
        assert (opening == "{") == (step.outcomes is not None)
        if step.outcomes is not None:
            for outcome, target in step.outcomes.items():
                successor = END_NODE if target is None else step_node_id(target)
                expected[(node, escape_label(outcome), successor)] += 1
        else:
            expected[(node, None, END_NODE if step.next is None else step_node_id(step.next))] += 1
    assert set(nodes) == {step_node_id(step.id) for step in sop.steps}
    assert edges == expected


# --- The catalog -------------------------------------------------------------------------


def test_the_catalog_has_sops() -> None:
    assert SOP_FILES, f"no SOP files in {CATALOG}"


@pytest.mark.parametrize("path", SOP_FILES, ids=[path.stem for path in SOP_FILES])
def test_bpmn_of_catalog_sop(path: Path, roles: dict[str, Role]) -> None:
    sop = _load(path)
    xml = to_bpmn(sop, roles)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    _schema().assertValid(etree.fromstring(xml.encode("utf-8")))
    _check_spiff(sop, roles, xml)
    doc = _Bpmn(xml)
    _check_bpmn_structure(sop, roles, doc)
    _check_bpmn_diagram(doc)
    assert to_bpmn(sop, roles) == xml, "rendering is deterministic"


@pytest.mark.parametrize("path", SOP_FILES, ids=[path.stem for path in SOP_FILES])
def test_mermaid_of_catalog_sop(path: Path, roles: dict[str, Role]) -> None:
    sop = _load(path)
    text = to_mermaid(sop, roles)
    _check_mermaid(sop, roles, text)
    assert to_mermaid(sop, roles) == text, "rendering is deterministic"


# --- A synthetic SOP: a loop back, a null outcome, two entry points, every kind ----------


def _synthetic(activity: str = "Ajukan draf") -> SopDefinition:
    return SopDefinition.model_validate(
        {
            "code": "uji-diagram",
            "number": 99,
            "title": "Uji Diagram",
            "version": 1,
            "legal_basis": [],
            "related": [],
            "warning": "-",
            "qualifications": [],
            "equipment": [],
            "records": [],
            "lanes": ["staf_ti", "kasubbag_ptip", "pt"],
            "entry_points": ["ajukan", "darurat"],
            "steps": [
                {
                    "id": "ajukan",
                    "number": 1,
                    "activity": activity,
                    "lane": "staf_ti",
                    "kind": "task",
                    "requirements": ["Draf"],
                    "time_standard": {"source_text": "15-30 menit", "min": "PT15M", "max": "PT30M"},
                    "next": "periksa",
                },
                {
                    "id": "periksa",
                    "number": 2,
                    "activity": "Periksa draf",
                    "lane": "kasubbag_ptip",
                    "kind": "decision",
                    "outcomes": {"setuju": "kirim", "revisi": "ajukan", "batal": None},
                },
                {
                    "id": "kirim",
                    "number": 3,
                    "activity": "Telaah oleh PT",
                    "lane": "pt",
                    "kind": "external",
                    "owner": "staf_ti",
                    "next": "arsip",
                },
                {
                    "id": "darurat",
                    "number": 4,
                    "activity": "Pemeriksaan otomatis",
                    "lane": "staf_ti",
                    "kind": "automated",
                    "job": "uji",
                    "next": "arsip",
                },
                {
                    "id": "arsip",
                    "number": 5,
                    "activity": "Arsipkan",
                    "lane": "staf_ti",
                    "kind": "task",
                    "output": "Arsip",
                },
            ],
        }
    )


def test_bpmn_of_a_loop_and_a_null_outcome(roles: dict[str, Role]) -> None:
    sop = _synthetic()
    xml = to_bpmn(sop, roles)
    _schema().assertValid(etree.fromstring(xml.encode("utf-8")))
    doc = _Bpmn(xml)
    _check_bpmn_structure(sop, roles, doc)
    _check_bpmn_diagram(doc)

    # The loop does not drag the earlier step to the right: ranks ignore back edges.
    assert doc.bounds(task_id("ajukan"))[0] < doc.bounds(task_id("periksa"))[0]
    (loop,) = [flow for flow in doc.flows.values() if flow.get("name") == "revisi"]
    points = doc.waypoints(loop.get("id"))
    # The loop meets the start's flow at the joining gateway before `ajukan`.
    join = loop.get("targetRef")
    (onward,) = doc.outgoing(join)
    assert onward.get("targetRef") == task_id("ajukan")
    box = doc.bounds(join)
    assert points[-1] == (box[0] + box[2] / 2, box[1]), "a loop comes in from above"
    assert min(y for _, y in points) < box[1]

    (cancel,) = [flow for flow in doc.flows.values() if flow.get("name") == "batal"]
    assert doc.tag(cancel.get("targetRef")) == "endEvent"
    assert doc.lane_of[cancel.get("targetRef")] == doc.lane_of[task_id("periksa")]

    documentation = doc.nodes[task_id("ajukan")].findtext(f"{BPMN}documentation")
    assert documentation == "Persyaratan: Draf\nWaktu: 15-30 menit (PT15M–PT30M, waktu kerja)"
    assert "Dicatat oleh: staf_ti" in (
        doc.nodes[task_id("kirim")].findtext(f"{BPMN}documentation") or ""
    )


def test_bpmn_conditions_drive_spiffworkflow(roles: dict[str, Role]) -> None:
    """Run the synthetic SOP in SpiffWorkflow: `revisi` loops back, `batal` ends it."""
    sop = _synthetic()
    workflow = BpmnWorkflow(_check_spiff(sop, roles, to_bpmn(sop, roles)))
    workflow.do_engine_steps()
    visited = []
    for outcome in ("-", "revisi", "-", "batal"):
        (task,) = workflow.get_tasks(state=TaskState.READY, manual=True)
        visited.append(task.task_spec.name)
        task.data["outcome"] = outcome
        task.run()
        workflow.do_engine_steps()
    assert visited == [task_id(step) for step in ("ajukan", "periksa", "ajukan", "periksa")]
    assert workflow.is_completed()


def test_mermaid_of_a_loop_and_a_null_outcome(roles: dict[str, Role]) -> None:
    sop = _synthetic()
    text = to_mermaid(sop, roles)
    _check_mermaid(sop, roles, text)
    assert '    step_periksa -->|"revisi"| step_ajukan' in text.splitlines()
    assert f'    step_periksa -->|"batal"| {END_NODE}' in text.splitlines()
    assert 'step_kirim(["3.\u00a0Telaah oleh PT"]):::external' in text


def test_mermaid_escapes_quotes_brackets_and_newlines(roles: dict[str, Role]) -> None:
    sop = _synthetic('Ajukan "draf" [v1] {a} | b #2\nlalu <kirim>')
    text = to_mermaid(sop, roles)
    _check_mermaid(sop, roles, text)
    (line,) = [line for line in text.splitlines() if line.strip().startswith("step_ajukan[")]
    label = _NODE.match(line).group(3)  # type: ignore[union-attr]
    assert label == (
        "1.\u00a0Ajukan #quot;draf#quot; #91;v1#93; #123;a#125; #124; b #35;2"
        "<br/>lalu #lt;kirim#gt;"
    )
    assert not set(label.replace("<br/>", "")) & set('"[]{}|<>')


def test_escape_label_does_not_escape_twice() -> None:
    # `#` is escaped in the same pass as the rest, so entity codes are not re-escaped.
    assert escape_label('"#') == "#quot;#35;"
    assert escape_label("a\n\n  b  ") == "a<br/>b"
