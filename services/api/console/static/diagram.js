// A SOP's flow as an SVG swimlane drawn from its definition (GET /v1/sops/{code}): one
// column per performer, one row per step, the official symbols (activity box, decision
// diamond), arrows to each next step with the outcome on it. Steps in `current` are
// highlighted, those in `done` shaded. No library, nothing fetched.
const SVG = "http://www.w3.org/2000/svg";
const COLUMN = 170;
const ROW = 96;
const BOX_W = 144;
const BOX_H = 60;
const HEAD = 48;
const GUTTER = 36;

function node(tag, attrs, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

function wrap(text, width, lines) {
  const words = text.split(/\s+/);
  const out = [];
  let line = "";
  for (const word of words) {
    if ((line + " " + word).trim().length > width && line) {
      out.push(line);
      line = word;
    } else {
      line = (line + " " + word).trim();
    }
  }
  if (line) out.push(line);
  if (out.length > lines) {
    out.length = lines;
    out[lines - 1] = out[lines - 1].slice(0, width - 1) + "…";
  }
  return out;
}

export function drawFlow(sop, roleNames, { current = [], done = [], label = "" } = {}) {
  const lanes = sop.lanes;
  const steps = [...sop.steps].sort((a, b) => a.number - b.number);
  const row = new Map(steps.map((step, index) => [step.id, index]));
  const width = lanes.length * COLUMN + GUTTER;
  const height = HEAD + steps.length * ROW + 12;
  const svg = node("svg", {
    viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "flow",
    "aria-label": label,
  });
  const defs = node("defs", {});
  const marker = node("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
    orient: "auto-start-reverse",
  });
  marker.append(node("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }));
  defs.append(marker);
  svg.append(defs);
  lanes.forEach((lane, index) => {
    const x = index * COLUMN;
    svg.append(node("rect", { x, y: 0, width: COLUMN, height, class: "lane" }));
    const title = node("text", { x: x + COLUMN / 2, y: 18, class: "lane-name" });
    wrap(roleNames[lane] || lane, 22, 2).forEach((text, line) => {
      title.append(node("tspan", { x: x + COLUMN / 2, dy: line ? 14 : 0 }, text));
    });
    svg.append(title);
  });
  const centre = (step) => ({
    x: lanes.indexOf(step.lane) * COLUMN + COLUMN / 2,
    y: HEAD + row.get(step.id) * ROW + BOX_H / 2 + 8,
  });
  const byId = new Map(steps.map((step) => [step.id, step]));
  // Arrows first, so boxes cover their ends.
  for (const step of steps) {
    const from = centre(step);
    const targets = step.outcomes
      ? Object.entries(step.outcomes).filter(([, target]) => target)
      : step.next ? [["", step.next]] : [];
    targets.forEach(([outcome, target], index) => {
      const to = centre(byId.get(target));
      let path;
      if (row.get(target) > row.get(step.id)) {
        const startY = from.y + BOX_H / 2;
        const midY = to.y - BOX_H / 2 - 14;
        path = `M${from.x},${startY} V${midY} H${to.x} V${to.y - BOX_H / 2}`;
      } else {
        // Back to an earlier step: round the right of the table.
        const side = width - GUTTER / 2 + index * 4 - 8;
        path = `M${from.x + BOX_W / 2},${from.y} H${side} V${to.y} H${to.x + BOX_W / 2}`;
      }
      svg.append(node("path", { d: path, class: "edge", "marker-end": "url(#arrow)" }));
      if (outcome) {
        const x = row.get(target) > row.get(step.id) ? (from.x + to.x) / 2 + 4 : width - GUTTER;
        const y = row.get(target) > row.get(step.id) ? to.y - BOX_H / 2 - 18 : from.y - 6;
        svg.append(node("text", { x, y, class: "edge-label" }, outcome.replaceAll("_", " ")));
      }
    });
  }
  for (const step of steps) {
    const { x, y } = centre(step);
    const state = current.includes(step.id) ? "current" : done.includes(step.id) ? "done" : "";
    const group = node("g", { class: `step ${step.kind} ${state}`.trim() });
    group.append(node("title", {}, `${step.number}. ${step.activity}`));
    if (step.kind === "decision") {
      const w = BOX_W / 2 + 6;
      const hh = BOX_H / 2 + 6;
      group.append(node("polygon", {
        points: `${x},${y - hh} ${x + w},${y} ${x},${y + hh} ${x - w},${y}`, class: "shape",
      }));
    } else {
      group.append(node("rect", {
        x: x - BOX_W / 2, y: y - BOX_H / 2, width: BOX_W, height: BOX_H, rx: 6, class: "shape",
      }));
    }
    const lines = wrap(`${step.number}. ${step.activity}`, step.kind === "decision" ? 16 : 24, 3);
    const text = node("text", { x, y: y - (lines.length - 1) * 7 + 4, class: "step-text" });
    lines.forEach((line, index) => text.append(node("tspan", { x, dy: index ? 14 : 0 }, line)));
    group.append(text);
    svg.append(group);
  }
  return svg;
}
