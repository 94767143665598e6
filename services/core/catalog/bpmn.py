"""A SOP definition as BPMN 2.0 XML with diagram interchange (`?format=bpmn`).

The model is what SpiffWorkflow's parser accepts and the layout is what bpmn.io /
Camunda Modeler show without "auto layout": one pool, one horizontal lane per role that
carries a step, nodes in columns by rank, orthogonal edges from border to border. Tasks
are sized to their wrapped names (see `task_size`), columns and rows to what they hold,
and every external label (events, gateways, outcome flows) gets explicit bounds clear
of the shapes.

Mapping of step kinds:

* `task` and `decision` -> `userTask` (a person completes it);
* `automated` -> `serviceTask` (the worker runs the step's job);
* `external` -> `receiveTask` without a message: another party's step is completed by
  an inbound message or recorded by the internal owner, and SpiffWorkflow's parser takes
  a receiveTask with no `messageRef` (it gets a "none" event definition), so no message
  definitions or correlations have to be invented for parties the catalog does not model
  (SpiffWorkflow's own engine then passes such a task at once: the document describes the
  flow, Alur's engine runs it);
* a step with `outcomes` is followed by an `exclusiveGateway` whose flows carry the
  outcome as `name` and `outcome == "<label>"` as condition; an outcome mapped to null
  leads to its own end event. SpiffWorkflow refuses several outgoing flows on a task,
  hence the separate gateway.

Pure: no I/O and no global state (names are written with literal prefixes rather than
through `ElementTree.register_namespace`, which would change every later serialisation
in the process).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.core.engine.definition import Role, SopDefinition, Step, StepKind, TimeStandard

NAMESPACES = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
TARGET_NAMESPACE = "https://alur.dev/sop"

START_NAME = "Mulai"
END_NAME = "Selesai"

_TASK_TAGS = {
    StepKind.TASK: "userTask",
    StepKind.DECISION: "userTask",
    StepKind.AUTOMATED: "serviceTask",
    StepKind.EXTERNAL: "receiveTask",
}
_SIZES = {
    "startEvent": (36, 36),
    "endEvent": (36, 36),
    "exclusiveGateway": (50, 50),
}
_TASK_SIZE = (100, 80)  # bpmn.io's own task size: the smallest box drawn here

# Geometry, in pixels.
_POOL_X = 160
_POOL_Y = 80
_POOL_LABEL_WIDTH = 30  # the vertical band holding the pool's name
_LANE_PAD_LEFT = 30
_LANE_PAD_RIGHT = 30
# Room left at each end of a lane's name, along the lane.
_LANE_LABEL_PAD = 15
_COLUMN_GAP = 70  # between the widest things of neighbouring columns: edges run in it
_ROW_MARGIN = 50  # above and below (half each) the tallest things of a row
_CORRIDOR = 12  # distance from a row's edge of the lines that run along it
_LABEL_GAP = 4  # between a label and the shape or line it belongs to
# bpmn.io wraps an external label (an event's, a gateway's, a flow's name) at 90 px,
# centred on the middle of its bounds, in 11 px type: measured at 12 px it fits.
_LABEL_WIDTH = 90

# --- Text metrics --------------------------------------------------------------------
#
# bpmn.io draws labels in 12 px Arial with a line height of 1.2; a task's name is
# wrapped inside the box less 7 px of padding on each side and centred both ways. The
# widths below are Arial's advance widths (units of 1/1000 em) for the characters SOP
# texts use; anything else counts as a capital M, so an estimate errs on the wide side.

FONT_SIZE = 12
LINE_HEIGHT = FONT_SIZE * 1.2
TASK_PADDING = 7
# The task-type marker (user, gear, envelope) sits in the top left corner, within the
# top 30 px. A task is tall enough that its centred name starts below that band, so the
# first line, which opens with the step number ("3. ..."), is never under the marker.
ICON_BAND = 30
_SLACK = 1.08  # browsers' metrics and kerning differ a little from the table

_ARIAL = {
    **dict.fromkeys("ijl", 222),
    **dict.fromkeys(" ,.:;!'|/\\fIt[]", 278),
    **dict.fromkeys('r-()"`{}', 333),
    **dict.fromkeys("Jcksvxyz*", 500),
    **dict.fromkeys("abdeghnopqu0123456789?$#_", 556),
    **dict.fromkeys("FTZL", 611),
    **dict.fromkeys("ABEKPSVXY&", 667),
    **dict.fromkeys("CDHNRUw", 722),
    **dict.fromkeys("GOQ", 778),
    **dict.fromkeys("mM", 833),
    "W": 944,
    "%": 889,
    "–": 556,
}
_WIDEST = 944


def text_width(text: str) -> float:
    """Estimated width in px of `text` on one line at bpmn.io's default font."""
    units = sum(_ARIAL.get(character, _WIDEST) for character in text)
    return units * FONT_SIZE / 1000 * _SLACK


def wrap_text(text: str, width: float) -> list[str]:
    """`text` broken greedily at spaces into lines no wider than `width` (a word that is
    wider stands alone on its line), as bpmn.io breaks a label."""
    lines: list[str] = []
    for word in text.split():
        if lines and text_width(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def text_height(lines: int) -> int:
    return math.ceil(lines * LINE_HEIGHT)


def task_size(name: str) -> tuple[int, int]:
    """The box of a task named `name`: the narrowest of a few widths that holds the
    name in at most three lines (the widest otherwise), tall enough for the lines and the
    marker band above them."""
    longest_word = max((text_width(word) for word in name.split()), default=0.0)
    for width in _TASK_WIDTHS:
        inner = width - 2 * TASK_PADDING
        if inner < longest_word:
            continue
        lines = wrap_text(name, inner)
        if len(lines) <= _TASK_MAX_LINES:
            break
    else:
        width = max(_TASK_WIDTHS[-1], math.ceil(longest_word) + 2 * TASK_PADDING)
        lines = wrap_text(name, width - 2 * TASK_PADDING)
    height = max(_TASK_SIZE[1], text_height(len(lines)) + 2 * ICON_BAND)
    return width, _round_up(height, 2)


_TASK_WIDTHS = (100, 130, 160, 190, 220)
_TASK_MAX_LINES = 3


def _round_up(value: float, step: int) -> int:
    return math.ceil(value / step) * step


_NCNAME_INVALID = re.compile(r"[^A-Za-z0-9_.\-]")


@dataclass(frozen=True)
class _Node:
    id: str
    tag: str
    lane: str
    name: str | None = None
    documentation: str | None = None
    # An event's definition (e.g. `messageEventDefinition`); None: a blank event.
    event: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        return _SIZES.get(self.tag) or task_size(self.name or "")


@dataclass(frozen=True)
class _Flow:
    id: str
    source: str
    target: str
    name: str | None = None
    condition: str | None = None


@dataclass(frozen=True)
class _Box:
    x: int
    y: int
    width: int
    height: int

    @property
    def cx(self) -> int:
        return self.x + self.width // 2

    @property
    def cy(self) -> int:
        return self.y + self.height // 2

    # Midpoints of the sides lie on the border of every shape drawn here: a rectangle,
    # a diamond (its vertices) and a circle (its extremes).
    def left(self) -> tuple[int, int]:
        return (self.x, self.cy)

    def right(self) -> tuple[int, int]:
        return (self.x + self.width, self.cy)

    def top(self) -> tuple[int, int]:
        return (self.cx, self.y)

    def bottom(self) -> tuple[int, int]:
        return (self.cx, self.y + self.height)


@dataclass
class _Ids:
    """Hands out unique NCName ids, so odd step ids or outcome labels cannot clash."""

    used: set[str] = field(default_factory=set)

    def take(self, base: str) -> str:
        candidate = ncname(base)
        suffix = 2
        unique = candidate
        while unique in self.used:
            unique = f"{candidate}_{suffix}"
            suffix += 1
        self.used.add(unique)
        return unique


@dataclass
class _Graph:
    nodes: list[_Node] = field(default_factory=list)
    flows: list[_Flow] = field(default_factory=list)
    starts: list[str] = field(default_factory=list)


def ncname(text: str) -> str:
    """`text` as an XML NCName: invalid characters become `_`, a bad first one gets `_`."""
    cleaned = _NCNAME_INVALID.sub("_", text) or "_"
    return cleaned if re.match(r"[A-Za-z_]", cleaned) else "_" + cleaned


def process_id(sop: SopDefinition) -> str:
    """The BPMN process id for `sop` (its code, when that is already an NCName)."""
    return ncname(sop.code)


def task_id(step_id: str) -> str:
    """The id of a step's task element (unique unless two step ids differ only in
    characters an NCName cannot hold, which the catalog's id pattern rules out)."""
    return ncname(f"Task_{step_id}")


def to_bpmn(sop: SopDefinition, roles: Mapping[str, Role]) -> str:
    """The BPMN document, declaration included.

    lxml refuses a `str` that carries an encoding declaration: encode the result to
    UTF-8 bytes before handing it to lxml (or SpiffWorkflow's `add_bpmn_str`).
    """
    graph = _build_graph(sop)
    lanes = _lanes_in_order(sop, graph.nodes)
    pid = process_id(sop)
    lane_ids = {lane: ncname(f"Lane_{lane}") for lane in lanes}

    root = ET.Element(
        "bpmn:definitions",
        {f"xmlns:{prefix}": uri for prefix, uri in NAMESPACES.items()}
        | {
            "id": f"Definitions_{pid}",
            "targetNamespace": TARGET_NAMESPACE,
            "exporter": "Alur",
            "exporterVersion": str(sop.version),
        },
    )
    collaboration = _sub(root, "collaboration", id=f"Collaboration_{pid}")
    _sub(collaboration, "participant", id=f"Participant_{pid}", name=sop.title, processRef=pid)
    _write_process(root, sop, roles, graph, lane_ids)
    names = {lane: role.name if (role := roles.get(lane)) else lane for lane in lane_ids}
    _write_diagram(root, pid, graph, lane_ids, names)

    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _write_process(
    root: ET.Element,
    sop: SopDefinition,
    roles: Mapping[str, Role],
    graph: _Graph,
    lane_ids: Mapping[str, str],
) -> None:
    pid = process_id(sop)
    process = _sub(root, "process", id=pid, name=sop.title, isExecutable="true")
    _documentation(
        process,
        _describe(sop.requirements, sop.output, sop.time_standard, sop.source_note),
    )
    lane_set = _sub(process, "laneSet", id=f"LaneSet_{pid}")
    for lane, lane_id in lane_ids.items():
        role = roles.get(lane)
        lane_element = _sub(
            lane_set, "lane", id=lane_id, name=role.name if role is not None else lane
        )
        for node in graph.nodes:
            if node.lane == lane:
                _sub(lane_element, "flowNodeRef").text = node.id

    incoming: dict[str, list[str]] = {}
    outgoing: dict[str, list[str]] = {}
    for flow in graph.flows:
        outgoing.setdefault(flow.source, []).append(flow.id)
        incoming.setdefault(flow.target, []).append(flow.id)
    for node in graph.nodes:
        element = _sub(process, node.tag, id=node.id, **_named(node.name))
        _documentation(element, node.documentation)
        for flow_id in incoming.get(node.id, ()):
            _sub(element, "incoming").text = flow_id
        for flow_id in outgoing.get(node.id, ()):
            _sub(element, "outgoing").text = flow_id
        if node.event is not None:
            _sub(element, node.event, id=f"{node.id}_definition")
    for flow in graph.flows:
        element = _sub(
            process,
            "sequenceFlow",
            id=flow.id,
            sourceRef=flow.source,
            targetRef=flow.target,
            **_named(flow.name),
        )
        if flow.condition is not None:
            condition = _sub(
                element, "conditionExpression", **{"xsi:type": "bpmn:tFormalExpression"}
            )
            condition.text = flow.condition


def _write_diagram(
    root: ET.Element,
    pid: str,
    graph: _Graph,
    lane_ids: Mapping[str, str],
    lane_names: Mapping[str, str],
) -> None:
    heights = {lane: lane_min_height(name) for lane, name in lane_names.items()}
    layout = _layout(graph, list(lane_ids), heights)
    diagram = ET.SubElement(root, "bpmndi:BPMNDiagram", id=f"BPMNDiagram_{pid}")
    plane = ET.SubElement(
        diagram, "bpmndi:BPMNPlane", id=f"BPMNPlane_{pid}", bpmnElement=f"Collaboration_{pid}"
    )
    pool = layout.pool
    _shape(plane, f"Participant_{pid}", pool, horizontal=True)
    for lane, lane_id in lane_ids.items():
        top, bottom = layout.bands[lane]
        lane_box = _Box(
            pool.x + _POOL_LABEL_WIDTH, top, pool.width - _POOL_LABEL_WIDTH, bottom - top
        )
        _shape(plane, lane_id, lane_box, horizontal=True)
    for node in graph.nodes:
        _shape(plane, node.id, layout.boxes[node.id], label=layout.labels.get(node.id))
    for flow in graph.flows:
        edge = ET.SubElement(plane, "bpmndi:BPMNEdge", id=f"{flow.id}_di", bpmnElement=flow.id)
        for x, y in _route(layout, flow):
            ET.SubElement(edge, "di:waypoint", x=str(x), y=str(y))
        if flow.id in layout.labels:
            _label(edge, layout.labels[flow.id])


def _build_graph(sop: SopDefinition) -> _Graph:
    ids = _Ids()
    graph = _Graph()
    tasks = {step.id: ids.take(f"Task_{step.id}") for step in sop.steps}

    def flow(
        source: str, target: str, name: str | None = None, condition: str | None = None
    ) -> None:
        graph.flows.append(
            _Flow(ids.take(f"Flow_{source}_{target}"), source, target, name, condition)
        )

    for index, entry in enumerate(sop.entry_points):
        lane = sop.step(entry).lane
        # One blank start (bpmnlint's single-blank-start-event): the procedure's usual
        # beginning. Its other entry points begin when something arrives (a report, a
        # renewal falling due): message start events.
        event = None if index == 0 else "messageEventDefinition"
        start = _Node(ids.take(f"StartEvent_{entry}"), "startEvent", lane, START_NAME, event=event)
        graph.nodes.append(start)
        graph.starts.append(start.id)
        flow(start.id, tasks[entry])

    for step in sop.steps:
        task = _Node(
            tasks[step.id],
            _TASK_TAGS[step.kind],
            step.lane,
            f"{step.number}. {step.activity}",
            _describe_step(step),
        )
        graph.nodes.append(task)
        if step.outcomes is not None:
            # Named with its question (bpmnlint's label-required): which outcome came?
            question = f"Hasil langkah {step.number}: {' / '.join(step.outcomes)}?"
            gateway = _Node(ids.take(f"Gateway_{step.id}"), "exclusiveGateway", step.lane, question)
            graph.nodes.append(gateway)
            flow(task.id, gateway.id)
            for outcome, target in step.outcomes.items():
                if target is None:
                    end_id = ids.take(f"EndEvent_{step.id}_{outcome}")
                    graph.nodes.append(_Node(end_id, "endEvent", step.lane, END_NAME))
                    target_id = end_id
                else:
                    target_id = tasks[target]
                flow(gateway.id, target_id, outcome, f"outcome == {json.dumps(outcome)}")
        elif step.next is not None:
            flow(task.id, tasks[step.next])
        else:
            end_id = ids.take(f"EndEvent_{step.id}")
            graph.nodes.append(_Node(end_id, "endEvent", step.lane, END_NAME))
            flow(task.id, end_id)
    _join_before_merges(graph, ids)
    return graph


def _join_before_merges(graph: _Graph, ids: _Ids) -> None:
    """Flows that meet at a task meet at a joining gateway first (bpmnlint's fake-join:
    a task with several incoming flows reads as waiting for all of them)."""
    incoming: dict[str, list[_Flow]] = {}
    for item in graph.flows:
        incoming.setdefault(item.target, []).append(item)
    lanes = {node.id: node.lane for node in graph.nodes}
    tags = {node.id: node.tag for node in graph.nodes}
    for target, flows in incoming.items():
        if len(flows) < 2 or tags[target] in ("exclusiveGateway", "endEvent"):
            continue
        join = _Node(ids.take(f"Join_{target}"), "exclusiveGateway", lanes[target])
        graph.nodes.append(join)
        for item in flows:
            graph.flows[graph.flows.index(item)] = dataclasses.replace(item, target=join.id)
        graph.flows.append(_Flow(ids.take(f"Flow_{join.id}_{target}"), join.id, target))


def _lanes_in_order(sop: SopDefinition, nodes: Iterable[_Node]) -> list[str]:
    used = list(dict.fromkeys(node.lane for node in nodes))
    return [lane for lane in sop.lanes if lane in used] + [
        lane for lane in used if lane not in sop.lanes
    ]


def _rank(graph: _Graph) -> dict[str, int]:
    """Column of each node: the longest path from a start event, loops ignored.

    Back edges are found by a depth-first search from the start events (then from any
    node left unvisited, so a broken definition still lays out); the rest is a DAG.
    """
    successors: dict[str, list[str]] = {node.id: [] for node in graph.nodes}
    for flow in graph.flows:
        successors[flow.source].append(flow.target)

    on_stack: set[str] = set()
    done: set[str] = set()
    back_edges: set[tuple[str, str]] = set()
    roots = graph.starts + [node.id for node in graph.nodes]
    for root in roots:
        if root in done:
            continue
        # Iterative DFS: a long SOP must not hit the recursion limit.
        stack: list[tuple[str, int]] = [(root, 0)]
        on_stack.add(root)
        while stack:
            node_id, index = stack[-1]
            if index < len(successors[node_id]):
                stack[-1] = (node_id, index + 1)
                target = successors[node_id][index]
                if target in on_stack:
                    back_edges.add((node_id, target))
                elif target not in done:
                    on_stack.add(target)
                    stack.append((target, 0))
            else:
                stack.pop()
                on_stack.discard(node_id)
                done.add(node_id)

    forward = [
        (flow.source, flow.target)
        for flow in graph.flows
        if (flow.source, flow.target) not in back_edges
    ]
    in_degree = {node.id: 0 for node in graph.nodes}
    for _, target in forward:
        in_degree[target] += 1
    ranks = {node.id: 0 for node in graph.nodes}
    ready = [node.id for node in graph.nodes if in_degree[node.id] == 0]
    while ready:
        node_id = ready.pop(0)
        for source, target in forward:
            if source != node_id:
                continue
            ranks[target] = max(ranks[target], ranks[node_id] + 1)
            in_degree[target] -= 1
            if in_degree[target] == 0:
                ready.append(target)
    return ranks


@dataclass
class _Layout:
    """Where everything goes: node boxes, label bounds (by node or flow id), each
    lane's band and each node's row as (top, bottom), the x of each column's left
    edge (and of the last one's right edge), and the side each flow leaves by."""

    ranks: dict[str, int]
    boxes: dict[str, _Box]
    labels: dict[str, _Box]
    bands: dict[str, tuple[int, int]]
    rows: dict[str, tuple[int, int]]
    columns: list[int]
    exits: dict[str, str]
    pool: _Box

    def top_track(self, node_id: str) -> int:
        """The y of the free track along the top margin of the node's row."""
        return self.rows[node_id][0] + _CORRIDOR

    def bottom_track(self, node_id: str) -> int:
        return self.rows[node_id][1] - _CORRIDOR

    def left_gutter(self, node_id: str) -> int:
        """The x of the free gap left of the node's column (right: after it)."""
        return self.columns[self.ranks[node_id]]

    def right_gutter(self, node_id: str) -> int:
        return self.columns[self.ranks[node_id] + 1]


@dataclass(frozen=True)
class _Extent:
    """How far a node and its labels reach from the node's centre."""

    left: int
    right: int
    up: int
    down: int


def lane_min_height(name: str) -> int:
    """The height a lane needs for its name: bpmn.io writes it turned on its side in the
    lane's 30 px band, wrapped to the lane's height, where two lines fit."""
    height = 60
    while len(wrap_text(name, height - 2 * _LANE_LABEL_PAD)) > 2:
        height += 10
    return height


def _layout(
    graph: _Graph, lanes: list[str], min_heights: Mapping[str, int] | None = None
) -> _Layout:
    """Nodes in columns by rank and, within a lane, in rows where a lane and a column
    hold several. Each column is as wide, and each row as tall, as the largest node
    with its labels plus a margin for the lines that run between them, so neither
    shapes nor labels can meet."""
    ranks = _rank(graph)
    lane_index = {lane: index for index, lane in enumerate(lanes)}
    row_of: dict[str, int] = {}
    cell_sizes: dict[tuple[str, int], int] = {}
    for node in graph.nodes:
        cell = (node.lane, ranks[node.id])
        row_of[node.id] = cell_sizes.get(cell, 0)
        cell_sizes[cell] = row_of[node.id] + 1
    place = {node.id: (lane_index[node.lane], row_of[node.id]) for node in graph.nodes}
    tags = {node.id: node.tag for node in graph.nodes}
    exits = {flow.id: _exit(flow, ranks, place, tags) for flow in graph.flows}
    attached = _attached_labels(graph, exits)
    extents = {
        node.id: _extent(node.size, [box for _, box in attached[node.id]]) for node in graph.nodes
    }

    column_count = max(ranks.values(), default=0) + 1
    left = [_max(extents[n].left for n in ranks if ranks[n] == c) for c in range(column_count)]
    right = [_max(extents[n].right for n in ranks if ranks[n] == c) for c in range(column_count)]
    columns = [_POOL_X + _POOL_LABEL_WIDTH + _LANE_PAD_LEFT]
    centres_x = []
    for column in range(column_count):
        centres_x.append(columns[-1] + _COLUMN_GAP // 2 + left[column])
        columns.append(centres_x[-1] + right[column] + _COLUMN_GAP // 2)

    bands: dict[str, tuple[int, int]] = {}
    row_bands: dict[tuple[int, int], tuple[int, int]] = {}
    centres_y: dict[tuple[int, int], int] = {}
    top = _POOL_Y
    for lane in lanes:
        lane_top = top
        row_count = max(
            (size for (cell_lane, _), size in cell_sizes.items() if cell_lane == lane), default=1
        )
        for row in range(row_count):
            key = (lane_index[lane], row)
            members = [n for n in place if place[n] == key]
            up = _max(extents[n].up for n in members)
            down = _max(extents[n].down for n in members)
            centres_y[key] = top + _ROW_MARGIN // 2 + up
            row_bands[key] = (top, top + _ROW_MARGIN + up + down)
            top = row_bands[key][1]
        short = (min_heights or {}).get(lane, 0) - (top - lane_top)
        if short > 0:  # the last row grows, so the lane holds its name
            last = (lane_index[lane], row_count - 1)
            row_bands[last] = (row_bands[last][0], row_bands[last][1] + short)
            top += short
        bands[lane] = (lane_top, top)

    boxes: dict[str, _Box] = {}
    labels: dict[str, _Box] = {}
    for node in graph.nodes:
        width, height = node.size
        cx, cy = centres_x[ranks[node.id]], centres_y[place[node.id]]
        boxes[node.id] = _Box(cx - width // 2, cy - height // 2, width, height)
        for owner, box in attached[node.id]:
            labels[owner] = _Box(cx + box.x, cy + box.y, box.width, box.height)
    pool = _Box(_POOL_X, _POOL_Y, columns[-1] + _LANE_PAD_RIGHT - _POOL_X, top - _POOL_Y)
    rows = {node_id: row_bands[key] for node_id, key in place.items()}
    return _Layout(ranks, boxes, labels, bands, rows, columns, exits, pool)


def _max(values: Iterable[int]) -> int:
    return max(values, default=0)


def _exit(
    flow: _Flow,
    ranks: Mapping[str, int],
    place: Mapping[str, tuple[int, int]],
    tags: Mapping[str, str],
) -> str:
    """The side a flow leaves its source by: `right`, `top`, `bottom`, or `top-left`
    for a loop back (which turns left along the top of the row)."""
    span = ranks[flow.target] - ranks[flow.source]
    source, target = place[flow.source], place[flow.target]
    if span >= 1:
        if source == target:
            return "right" if span == 1 else "bottom"
        if tags[flow.source] != "exclusiveGateway":
            return "right"
        # A branch leaves the diamond by its top or bottom vertex, so it does not share
        # the right vertex with the branch that goes straight on.
        return "bottom" if target > source else "top"
    return "right" if flow.source == flow.target else "top-left"


def _attached_labels(graph: _Graph, exits: Mapping[str, str]) -> dict[str, list[tuple[str, _Box]]]:
    """Each node's labels (its own name's and its named outgoing flows'), as boxes
    relative to the node's centre.

    An event's name sits above it (no flow touches an event's top); a gateway's
    question below it, left of the bottom vertex; a flow's name beside the line where it
    leaves the gateway: above it when it leaves by the right vertex, right of the line
    (left of it for a loop back) when it leaves by the top or the bottom vertex. Names
    that would share a spot are stacked away from the shape.
    """
    attached: dict[str, list[tuple[str, _Box]]] = {node.id: [] for node in graph.nodes}
    gap = _LABEL_GAP
    for node in graph.nodes:
        if not node.name or node.tag not in _SIZES:
            continue
        width, height = _label_size(node.name)
        half_height = node.size[1] // 2
        if node.tag == "exclusiveGateway":
            box = _Box(-gap - width, half_height + gap, width, height)
        else:
            box = _Box(-(width // 2), -half_height - gap - height, width, height)
        attached[node.id].append((node.id, box))

    sizes = {node.id: node.size for node in graph.nodes}
    gateways = {node.id for node in graph.nodes if node.tag == "exclusiveGateway"}
    stacked: dict[tuple[str, str], int] = {}
    for flow in graph.flows:
        if not flow.name or flow.source not in gateways:
            continue
        width, height = _label_size(flow.name)
        half_width, half_height = sizes[flow.source][0] // 2, sizes[flow.source][1] // 2
        side = exits[flow.id]
        offset = stacked.get((flow.source, side), 0)
        stacked[(flow.source, side)] = offset + height + gap
        if side == "right":
            box = _Box(half_width + gap, -gap - height - offset, width, height)
        elif side == "bottom":
            box = _Box(gap, half_height + gap + offset, width, height)
        elif side == "top":
            box = _Box(gap, -half_height - gap - height - offset, width, height)
        else:
            box = _Box(-gap - width, -half_height - gap - height - offset, width, height)
        attached[flow.source].append((flow.id, box))
    return attached


def _label_size(text: str) -> tuple[int, int]:
    lines = wrap_text(text, _LABEL_WIDTH)
    return math.ceil(max(text_width(line) for line in lines)) + 2, text_height(len(lines))


def _extent(size: tuple[int, int], labels: Iterable[_Box]) -> _Extent:
    width, height = size
    extent = _Extent(width // 2, width - width // 2, height // 2, height - height // 2)
    for box in labels:
        extent = _Extent(
            max(extent.left, -box.x),
            max(extent.right, box.x + box.width),
            max(extent.up, -box.y),
            max(extent.down, box.y + box.height),
        )
    return extent


def _route(layout: _Layout, flow: _Flow) -> list[tuple[int, int]]:
    """Orthogonal waypoints from the source's border to the target's border.

    Vertical runs use the gutters between columns and horizontal runs that cross
    columns use the empty margins of a row (loops above the shapes, skips below), so a
    line never passes through a shape.
    """
    source, target = layout.boxes[flow.source], layout.boxes[flow.target]
    span = layout.ranks[flow.target] - layout.ranks[flow.source]
    side = layout.exits[flow.id]
    if span >= 1:
        if source.cy == target.cy:
            if span == 1:
                return [source.right(), target.left()]
            below = layout.bottom_track(flow.target)
            return [source.bottom(), (source.cx, below), (target.cx, below), target.bottom()]
        gutter = layout.right_gutter(flow.source)
        if side == "bottom":
            track = layout.bottom_track(flow.source)
            leave = [source.bottom(), (source.cx, track), (gutter, track)]
        elif side == "top":
            track = layout.top_track(flow.source)
            leave = [source.top(), (source.cx, track), (gutter, track)]
        else:
            leave = [source.right(), (gutter, source.cy)]
        if span == 1:
            return [*leave, (gutter, target.cy), target.left()]
        below = layout.bottom_track(flow.target)
        return [*leave, (gutter, below), (target.cx, below), target.bottom()]

    above = layout.top_track(flow.target)
    if source == target:
        # A step that repeats itself: out of the right side, back in from above.
        right_x = source.right()[0] + _CORRIDOR
        return [
            source.right(),
            (right_x, source.cy),
            (right_x, above),
            (source.cx, above),
            source.top(),
        ]
    if source.cy == target.cy:
        return [source.top(), (source.cx, above), (target.cx, above), target.top()]
    own_above = layout.top_track(flow.source)
    gutter = layout.left_gutter(flow.source)
    return [
        source.top(),
        (source.cx, own_above),
        (gutter, own_above),
        (gutter, above),
        (target.cx, above),
        target.top(),
    ]


def _describe_step(step: Step) -> str | None:
    lines = _describe(step.requirements, step.output, step.time_standard, step.source_note)
    extra = []
    if step.kind is StepKind.AUTOMATED and step.job is not None:
        extra.append(f"Job: {step.job}")
    if step.kind is StepKind.EXTERNAL and step.owner is not None:
        extra.append(f"Dicatat oleh: {step.owner}")
    combined = [*(lines.splitlines() if lines else []), *extra]
    return "\n".join(combined) or None


def _describe(
    requirements: Iterable[str],
    output: str | None,
    time_standard: TimeStandard | None,
    source_note: str | None,
) -> str | None:
    """The *mutu baku* (requirements, standard time, output) as documentation text."""
    lines = []
    required = list(requirements)
    if required:
        lines.append("Persyaratan: " + "; ".join(required))
    if time_standard is not None:
        span = (
            f"{time_standard.min}–{time_standard.max}"
            if time_standard.is_range
            else time_standard.min
        )
        basis = "waktu kerja" if time_standard.basis == "working" else "waktu kalender"
        lines.append(f"Waktu: {time_standard.source_text} ({span}, {basis})")
    if output:
        lines.append(f"Output: {output}")
    if source_note:
        lines.append(f"Catatan: {source_note}")
    return "\n".join(lines) or None


def _sub(parent: ET.Element, tag: str, **attributes: str) -> ET.Element:
    return ET.SubElement(parent, f"bpmn:{tag}", attributes)


def _named(name: str | None) -> dict[str, str]:
    return {"name": name} if name else {}


def _documentation(element: ET.Element, text: str | None) -> None:
    # The schema wants documentation before every other child, so it is written first.
    if text:
        _sub(element, "documentation").text = text


def _shape(
    plane: ET.Element,
    element_id: str,
    box: _Box,
    *,
    horizontal: bool = False,
    label: _Box | None = None,
) -> None:
    attributes = {"id": f"{element_id}_di", "bpmnElement": element_id}
    if horizontal:
        attributes["isHorizontal"] = "true"
    shape = ET.SubElement(plane, "bpmndi:BPMNShape", attributes)
    _bounds(shape, box)
    if label is not None:
        _label(shape, label)


def _label(parent: ET.Element, box: _Box) -> None:
    _bounds(ET.SubElement(parent, "bpmndi:BPMNLabel"), box)


def _bounds(parent: ET.Element, box: _Box) -> None:
    ET.SubElement(
        parent,
        "dc:Bounds",
        x=str(box.x),
        y=str(box.y),
        width=str(box.width),
        height=str(box.height),
    )
