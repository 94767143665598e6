"""A SOP definition drawn as a Mermaid flowchart (`GET /v1/sops/{code}/diagram?format=mermaid`).

One subgraph per lane (the swim-lanes of the source's *Alur Proses*), one node per step,
a start node per entry point and one shared end node. Pure and deterministic: the same
definition always gives the same text, so the diagram can be cached and diffed.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping

from services.core.engine.definition import Role, SopDefinition, Step, StepKind

START_LABEL = "Mulai"
END_LABEL = "Selesai"
END_NODE = "finish"

# Mermaid parses `#name;` / `#123;` entity codes inside labels, so `#` itself is escaped
# first; the other characters would end a quoted label, open a node shape, or (`|`) end
# an edge label.
_ENTITIES = {
    "#": "#35;",
    '"': "#quot;",
    "&": "#38;",
    "<": "#lt;",
    ">": "#gt;",
    "[": "#91;",
    "]": "#93;",
    "{": "#123;",
    "}": "#125;",
    "|": "#124;",
    "`": "#96;",
}
_ENTITY_PATTERN = re.compile("|".join(re.escape(char) for char in _ENTITIES))

# Words Mermaid reads as syntax when they stand alone as an id; a role id equal to one
# of them (or to one of our own node ids) is prefixed rather than breaking the diagram.
_RESERVED_IDS = frozenset(
    {
        "end",
        "graph",
        "flowchart",
        "subgraph",
        "direction",
        "style",
        "class",
        "classDef",
        "click",
        "linkStyle",
        "default",
        END_NODE,
    }
)

# Shapes carry the kind even where colour is lost (printouts, colour-blind readers):
# a rhombus decides, a subroutine box is run by the worker, a stadium is another party's.
_SHAPES = {
    StepKind.TASK: ('["', '"]'),
    StepKind.AUTOMATED: ('[["', '"]]'),
    StepKind.EXTERNAL: ('(["', '"])'),
    StepKind.DECISION: ('{"', '"}'),
}

_CLASS_DEFS = (
    "classDef task fill:#ffffff,stroke:#333333",
    "classDef decision fill:#fff4cc,stroke:#b58900",
    "classDef automated fill:#e0f0ff,stroke:#1f6fb2",
    "classDef external fill:#f2f2f2,stroke:#777777,stroke-dasharray:5 5",
    "classDef terminal fill:#ffffff,stroke:#333333,stroke-width:2px",
)


def escape_label(text: str) -> str:
    """Text made safe inside a double-quoted Mermaid label (node, subgraph or edge)."""
    escaped = _ENTITY_PATTERN.sub(lambda match: _ENTITIES[match.group(0)], text)
    lines = (line.strip() for line in escaped.splitlines())
    return "<br/>".join(line for line in lines if line)


def step_node_id(step_id: str) -> str:
    """The Mermaid node id of a step (prefixed so a step id can never be a keyword)."""
    return "step_" + _sanitize(step_id)


def lane_subgraph_id(role_id: str) -> str:
    sanitized = _sanitize(role_id)
    if sanitized in _RESERVED_IDS or sanitized.startswith(("step_", "start_")):
        return "lane_" + sanitized
    return sanitized


# Characters per line of a node's label: long Indonesian activities otherwise make
# boxes (and decision diamonds) as wide as the page.
LABEL_WIDTH = 32


def wrap_label(text: str, width: int = LABEL_WIDTH) -> str:
    """`text` broken into lines of at most `width` characters (a longer word stays
    whole), its own line breaks kept."""
    return "\n".join(
        textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False)
        for line in text.splitlines()
    )


def step_label(step: Step) -> str:
    # A no-break space after "N." keeps Mermaid's markdown reading of labels from
    # turning "1. Activity" into an (unsupported) ordered list.
    return escape_label(wrap_label(f"{step.number}.\u00a0{step.activity}"))


def to_mermaid(sop: SopDefinition, roles: Mapping[str, Role]) -> str:
    lines = ["flowchart TB"]
    by_lane: dict[str, list[Step]] = {}
    for step in sop.steps:
        by_lane.setdefault(step.lane, []).append(step)

    for lane in _lanes_in_order(sop, by_lane):
        role = roles.get(lane)
        lane_name = role.name if role is not None else lane
        lines.append(f'    subgraph {lane_subgraph_id(lane)} ["{escape_label(lane_name)}"]')
        for step in by_lane[lane]:
            lines.append(f"        {_step_node(step)}")
        lines.append("    end")

    for index, entry in enumerate(sop.entry_points, start=1):
        start_id = f"start_{index}"
        lines.append(f'    {start_id}(("{START_LABEL}")):::terminal --> {step_node_id(entry)}')
    lines.append(f'    {END_NODE}((("{END_LABEL}"))):::terminal')

    for step in sop.steps:
        source = step_node_id(step.id)
        if step.outcomes is not None:
            for outcome, target in step.outcomes.items():
                target_id = END_NODE if target is None else step_node_id(target)
                lines.append(f'    {source} -->|"{escape_label(outcome)}"| {target_id}')
        elif step.next is not None:
            lines.append(f"    {source} --> {step_node_id(step.next)}")
        else:
            lines.append(f"    {source} --> {END_NODE}")

    lines.extend(f"    {class_def}" for class_def in _CLASS_DEFS)
    return "\n".join(lines) + "\n"


def _step_node(step: Step) -> str:
    # Any step with outcomes branches, whatever its kind (SOP 10's automated check
    # decides berhasil / tidak_berhasil), so the shape follows the outcomes and the
    # colour class keeps the kind visible.
    shape_kind = StepKind.DECISION if step.outcomes is not None else step.kind
    opening, closing = _SHAPES[shape_kind]
    return f"{step_node_id(step.id)}{opening}{step_label(step)}{closing}:::{step.kind.value}"


def _lanes_in_order(sop: SopDefinition, by_lane: Mapping[str, list[Step]]) -> list[str]:
    """Lanes that carry a step: declared order first, then any undeclared ones as met."""
    declared = [lane for lane in sop.lanes if lane in by_lane]
    return declared + [lane for lane in by_lane if lane not in sop.lanes]


def _sanitize(identifier: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", identifier)
