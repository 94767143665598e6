"""The BPMN export's layout read back from its diagram interchange, as bpmn.io would
draw it: no shape overlaps another, every shape lies in its lane and every lane in the
pool, every label (events, gateways, outcome flows) has explicit bounds clear of every
shape and every other label, each task is large enough for its wrapped name below the
task-type marker, and each task's name starts with its step number."""

from __future__ import annotations

import itertools
import re

import pytest
from lxml import etree  # no stubs installed

from services.core.catalog.bpmn import (
    ICON_BAND,
    NAMESPACES,
    TASK_PADDING,
    task_id,
    task_size,
    text_height,
    text_width,
    to_bpmn,
    wrap_text,
)
from services.core.catalog.loader import load_catalog
from services.core.engine.definition import Catalog, Role, SopDefinition
from services.core.settings import PROJECT_ROOT

Bounds = tuple[float, float, float, float]
TASKS = {"userTask", "serviceTask", "receiveTask"}
LABELLED = {"startEvent", "endEvent", "exclusiveGateway"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(PROJECT_ROOT / "sop_catalog")


def _bounds(element: etree._Element) -> Bounds:
    box = element.find("dc:Bounds", NAMESPACES)
    assert box is not None
    x, y, width, height = (float(box.get(key)) for key in ("x", "y", "width", "height"))
    return x, y, width, height


def _overlap(first: Bounds, second: Bounds) -> bool:
    ax, ay, aw, ah = first
    bx, by, bw, bh = second
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def _inside(inner: Bounds, outer: Bounds) -> bool:
    ix, iy, iw, ih = inner
    ox, oy, ow, oh = outer
    return ox <= ix and oy <= iy and ix + iw <= ox + ow and iy + ih <= oy + oh


class _Diagram:
    def __init__(self, xml: str) -> None:
        root = etree.fromstring(xml.encode("utf-8"))
        bpmn = "{" + NAMESPACES["bpmn"] + "}"
        (process,) = root.iterfind(f"{bpmn}process")
        (self.pool_id,) = (p.get("id") for p in root.iterfind(f"{bpmn}collaboration/{bpmn}*"))
        self.tags = {
            element.get("id"): etree.QName(element).localname
            for element in process
            if etree.QName(element).localname in TASKS | LABELLED
        }
        self.names = {element.get("id"): element.get("name") for element in process}
        self.names |= {
            lane.get("id"): lane.get("name")
            for lane in process.iterfind(f"{bpmn}laneSet/{bpmn}lane")
        }
        self.lane_of = {
            ref.text: lane.get("id")
            for lane in process.iterfind(f"{bpmn}laneSet/{bpmn}lane")
            for ref in lane.iterfind(f"{bpmn}flowNodeRef")
        }
        self.named_flows = {
            flow.get("id") for flow in process.iterfind(f"{bpmn}sequenceFlow") if flow.get("name")
        }
        self.shapes: dict[str, Bounds] = {}
        self.labels: dict[str, Bounds] = {}
        for item in root.iterfind(".//bpmndi:BPMNShape", NAMESPACES):
            self.shapes[item.get("bpmnElement")] = _bounds(item)
        for item in root.iterfind(".//bpmndi:*", NAMESPACES):
            label = item.find("bpmndi:BPMNLabel", NAMESPACES)
            if label is not None:
                self.labels[item.get("bpmnElement")] = _bounds(label)


def _check(sop: SopDefinition, roles: dict[str, Role]) -> _Diagram:
    diagram = _Diagram(to_bpmn(sop, roles))
    nodes = sorted(diagram.tags)
    pool = diagram.shapes[diagram.pool_id]

    for first, second in itertools.combinations(nodes, 2):
        assert not _overlap(diagram.shapes[first], diagram.shapes[second]), (first, second)
    for node in nodes:
        assert _inside(diagram.shapes[node], diagram.shapes[diagram.lane_of[node]]), node
    for lane in set(diagram.lane_of.values()):
        assert _inside(diagram.shapes[lane], pool), lane
        # The lane's name, turned on its side in the lane's band, fits in two lines.
        name = diagram.names[lane] or ""
        height = diagram.shapes[lane][3]
        assert len(wrap_text(name, height - 30)) <= 2, (lane, name, height)

    # Every name drawn outside a shape has its own bounds: events, named gateways and
    # the outcome flows (bpmn.io would otherwise put them where it guesses).
    expected = diagram.named_flows | {
        node for node in nodes if diagram.tags[node] in LABELLED and diagram.names[node]
    }
    assert set(diagram.labels) == expected
    for owner, label in diagram.labels.items():
        hit = [node for node in nodes if _overlap(label, diagram.shapes[node])]
        assert not hit, f"label of {owner} overlaps {hit}"
        assert _inside(label, pool), owner
        # Wide enough for the text on the lines bpmn.io breaks it into.
        text = diagram.names[owner] or ""
        lines = wrap_text(text, 90)
        assert label[2] >= max(text_width(line) for line in lines), owner
        assert label[3] >= text_height(len(lines)), owner
    for (first, a), (second, b) in itertools.combinations(diagram.labels.items(), 2):
        assert not _overlap(a, b), (first, second)

    for step in sop.steps:
        node = task_id(step.id)
        name = diagram.names[node] or ""
        assert name.startswith(f"{step.number}. "), "the step number opens the task's name"
        _, _, width, height = diagram.shapes[node]
        lines = wrap_text(name, width - 2 * TASK_PADDING)
        assert all(text_width(line) <= width - 2 * TASK_PADDING for line in lines), name
        # Centred vertically, the text starts below the marker band at the top.
        assert (height - text_height(len(lines))) / 2 >= ICON_BAND, name
    return diagram


SOP_NUMBERS = range(1, 13)


@pytest.mark.parametrize("number", SOP_NUMBERS, ids=[f"sop-{n:02d}" for n in SOP_NUMBERS])
def test_the_layout_of_every_sop_is_legible(catalog: Catalog, number: int) -> None:
    roles = {role.id: role for role in catalog.roles}
    (sop,) = [sop for sop in catalog.sops if sop.number == number]
    _check(sop, roles)


def test_long_names_make_larger_tasks(catalog: Catalog) -> None:
    roles = {role.id: role for role in catalog.roles}
    sop = max(catalog.sops, key=lambda sop: max(len(step.activity) for step in sop.steps))
    step = max(sop.steps, key=lambda step: len(step.activity))
    diagram = _check(sop, roles)
    _, _, width, height = diagram.shapes[task_id(step.id)]
    assert len(step.activity) > 150
    assert width > 100, "a long name gets more than bpmn.io's 100 x 80"
    assert height > 80
    assert task_size("1. Arsip") == (100, 80), "a short one keeps the standard size"


def test_estimated_widths_follow_arial() -> None:
    # Arial at 12 px: "m" is 10 px, "i" under 3 px, a capital wider than its lower case.
    assert text_width("m" * 10) > 3 * text_width("i" * 10)
    assert text_width("W") > text_width("w") > text_width("r")
    assert 95 < text_width("Pengadilan Negeri") < 115
    assert wrap_text("satu dua tiga", text_width("satu dua")) == ["satu dua", "tiga"]
    assert wrap_text("Supercalifragilistik a", 20) == ["Supercalifragilistik", "a"]


def test_the_check_finds_overlaps(catalog: Catalog) -> None:
    """The geometric check can fail: a label moved onto its gateway is caught."""
    roles = {role.id: role for role in catalog.roles}
    sop = next(sop for sop in catalog.sops if any(step.outcomes for step in sop.steps))
    xml = to_bpmn(sop, roles)
    diagram = _Diagram(xml)
    gateway = next(node for node, tag in diagram.tags.items() if tag == "exclusiveGateway")
    x, y, _, _ = diagram.shapes[gateway]
    shape = re.search(rf'bpmnElement="{gateway}">.*?</bpmndi:BPMNShape>', xml, re.S)
    assert shape is not None
    moved = re.sub(
        r'<bpmndi:BPMNLabel>\s*<dc:Bounds x="[^"]+" y="[^"]+"',
        f'<bpmndi:BPMNLabel><dc:Bounds x="{x:g}" y="{y:g}"',
        shape.group(0),
    )
    broken = _Diagram(xml.replace(shape.group(0), moved))
    assert _overlap(broken.labels[gateway], broken.shapes[gateway])
