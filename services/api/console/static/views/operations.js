import { api } from "../api.js";
import { formatDate, formatInstant, t } from "../i18n.js";
import { state } from "../state.js";
import { badge, h, notice, sopNumber, table } from "../ui.js";

const SVG = "http://www.w3.org/2000/svg";

// Response times of the latest checks as a small bar chart (down checks in red).
function sparkline(checks, label) {
  const width = 240;
  const height = 40;
  const latest = checks.slice(0, 48).reverse();
  const most = Math.max(1, ...latest.map((check) => check.latency_ms || 0));
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const step = width / Math.max(latest.length, 1);
  latest.forEach((check, index) => {
    const bar = document.createElementNS(SVG, "rect");
    const value = check.up ? Math.max(2, ((check.latency_ms || 0) / most) * (height - 2)) : height;
    bar.setAttribute("x", String(index * step));
    bar.setAttribute("y", String(height - value));
    bar.setAttribute("width", String(Math.max(1, step - 1)));
    bar.setAttribute("height", String(value));
    bar.setAttribute("class", check.up ? "up" : "down");
    svg.append(bar);
  });
  return svg;
}

function daysUntil(iso) {
  return Math.floor((new Date(iso) - Date.now()) / 86_400_000);
}

async function monitors() {
  const list = await api("/v1/monitors");
  const cards = [];
  for (const monitor of list.items) {
    const checks = await api(`/v1/monitors/${encodeURIComponent(monitor.id)}/checks?limit=48`).catch(() => ({ items: [] }));
    const state_ = monitor.state === "up" ? badge("ok", t("ops.monitor.up"))
      : monitor.state === "down" ? badge("late", t("ops.monitor.down")) : badge("muted", t("ops.monitor.unknown"));
    const latencies = checks.items.filter((check) => check.up && check.latency_ms != null).map((check) => Math.round(check.latency_ms));
    cards.push(h("li", { class: "card" },
      h("h3", {}, monitor.name, " ", state_),
      h("p", {}, h("a", { href: monitor.url, rel: "noopener noreferrer", target: "_blank" }, monitor.url)),
      sparkline(checks.items, `${t("ops.monitor.latency")}: ${latencies.join(", ") || "-"}`),
      h("p", { class: "hint" }, t("ops.monitor.latency"), latencies.length ? `: ${latencies[0]} ms` : ""),
      h("p", {}, monitor.certificate_expires_at
        ? t("ops.monitor.cert", { days: daysUntil(monitor.certificate_expires_at) })
        : t("ops.monitor.cert.none"))));
  }
  return h("section", {}, h("h2", {}, t("ops.monitors")), cards.length ? h("ul", { class: "cards" }, cards) : h("p", {}, t("empty")));
}

async function backups() {
  const list = await api("/v1/backup-checks?limit=60");
  return h("section", {}, h("h2", {}, t("ops.backups")),
    table(t("ops.backups"), [t("ops.day"), t("overview.satker"), t("ops.result"), t("ops.reasons")],
      list.items.map((check) => [
        formatDate(check.day),
        check.satker,
        check.ok ? badge("ok", t("ops.backup.ok")) : badge("late", t("ops.backup.bad")),
        check.reasons.map((reason) => reason.message || reason.detail || reason.code || JSON.stringify(reason)).join("; ") || "-",
      ]), { hideCaption: true }));
}

async function renewals() {
  const list = await api("/v1/renewals");
  const rows = [...list.items].sort((a, b) => a.due_date.localeCompare(b.due_date));
  return h("section", {}, h("h2", {}, t("ops.renewals")),
    table(t("ops.renewals"), [t("ops.name"), t("ops.service"), t("ops.provider"), t("ops.renewal.due")],
      rows.map((item) => {
        const left = daysUntil(`${item.due_date}T00:00:00`);
        return [item.name, item.service, item.provider || "-",
          [formatDate(item.due_date), " ", left < 0 ? badge("late", t("ops.renewal.overdue"))
            : badge(left <= item.remind_days_before ? "escalated" : "muted", t("ops.renewal.left", { days: left }))]];
      }), { hideCaption: true }));
}

async function adminPanels() {
  const [subscriptions, deliveries, sources] = await Promise.all([
    api("/v1/webhook-subscriptions"),
    api("/v1/webhook-deliveries?limit=50"),
    api("/v1/hook-sources"),
  ]);
  return [
    h("section", {}, h("h2", {}, t("ops.webhooks")),
      table(t("ops.webhooks"), [t("ops.url"), t("ops.event"), t("ops.state")],
        subscriptions.items.map((item) => [item.url, item.event_types.join(", "),
          item.active ? badge("ok", t("ops.active")) : badge("muted", t("ops.inactive"))]), { hideCaption: true })),
    h("section", {}, h("h2", {}, t("ops.deliveries")),
      table(t("ops.deliveries"), [t("ops.event"), t("ops.state"), t("ops.attempts"), t("instances.started")],
        deliveries.items.map((item) => [item.event_type, item.status, String(item.attempts ?? ""), formatInstant(item.created_at)]),
        { hideCaption: true })),
    h("section", {}, h("h2", {}, t("ops.hooksources")),
      table(t("ops.hooksources"), [t("ops.name"), t("ops.kind"), t("overview.satker")],
        sources.items.map((item) => [item.name, item.kind, item.satkers.join(", ")]),
        { hideCaption: true })),
  ];
}

// Each panel stands alone: one the caller may not read (403) or that fails says so in
// its place, and the others still show.
async function panel(title, build) {
  try {
    return await build();
  } catch (error) {
    return h("section", {}, h("h2", {}, title), notice("error", error.message || t("error.unknown")));
  }
}

export async function operationsView(main) {
  const parts = await Promise.all([
    panel(t("ops.monitors"), monitors),
    panel(t("ops.backups"), backups),
    panel(t("ops.renewals"), renewals),
  ]);
  const admin = state.me && state.me.admin ? await panel(t("ops.webhooks"), adminPanels) : [];
  main.replaceChildren(h("h1", {}, t("ops.title")), ...parts, ...[admin].flat());
}

export async function overviewView(main) {
  if (!state.me.supervisor) {
    main.replaceChildren(h("h1", {}, t("overview.title")), notice("info", t("overview.forbidden")));
    return;
  }
  const view = await api("/v1/overview");
  const counts = (item) => [String(item.open), String(item.overdue), String(item.escalated)];
  const head = [t("overview.open"), t("overview.overdue"), t("overview.escalated")];
  main.replaceChildren(
    h("h1", {}, t("overview.title")),
    h("p", { class: "totals" }, `${t("overview.open")}: ${view.total.open} · ${t("overview.overdue")}: ${view.total.overdue} · ${t("overview.escalated")}: ${view.total.escalated}`),
    table(t("overview.bysop"), [t("tasks.sop"), ...head],
      view.by_sop.map((item) => [`${sopNumber(item.sop_number)} — ${item.sop_title}`, ...counts(item)])),
    table(t("overview.byperson"), [t("tasks.assignee"), ...head], view.by_person.map((item) => [item.assignee, ...counts(item)])),
    table(t("overview.unassigned"), [t("task.lane"), ...head], view.unassigned_by_lane.map((item) => [item.lane_name, ...counts(item)])),
    table(t("overview.satker"), [t("overview.satker"), ...head], view.by_satker.map((item) => [item.name, ...counts(item)])),
    table(t("overview.escalations"), [t("tasks.step"), t("tasks.instance"), t("task.lane"), t("tasks.due")],
      view.escalated.map((task) => [
        h("a", { href: `#/instances/${encodeURIComponent(task.instance_id)}/tasks/${encodeURIComponent(task.id)}` }, `${task.step_number}. ${task.activity}`),
        task.instance_title, task.lane_name,
        [formatInstant(task.due_at), " ", badge("escalated", t("tasks.escalated", { level: task.escalation_level }))],
      ])),
  );
}
