import { api } from "../api.js";
import { formatDuration, formatInstant, t } from "../i18n.js";
import { definition } from "../state.js";
import { act, badge, field, h, notice, sopNumber } from "../ui.js";

function deadline(task) {
  if (!task.due_at) return t("tasks.nodeadline");
  return formatInstant(task.due_at);
}

function taskLink(task) {
  return `#/instances/${encodeURIComponent(task.instance_id)}/tasks/${encodeURIComponent(task.id)}`;
}

export async function inboxView(main) {
  const page = await api("/v1/tasks?mine=true&limit=200");
  const message = h("div", { class: "messages" });
  const heading = h("h1", {}, t("tasks.title"));
  if (!page.items.length) {
    main.replaceChildren(heading, h("p", { class: "empty-state" }, t("tasks.none")));
    return;
  }
  const rows = page.items.map((task) => {
    const claim = h("button", { type: "button" }, task.assignee ? t("tasks.release") : t("tasks.claim"));
    claim.addEventListener("click", () =>
      act(claim, message, async () => {
        const action = task.assignee ? "release" : "claim";
        await api(`/v1/tasks/${encodeURIComponent(task.id)}/${action}`, { method: "POST" });
        await inboxView(main);
        main.querySelector(".messages")?.append(
          notice("ok", t(action === "claim" ? "tasks.claimed" : "tasks.released")),
        );
      }),
    );
    return h(
      "li",
      { class: `task-card${task.overdue ? " overdue" : ""}` },
      h(
        "div",
        { class: "task-head" },
        h("span", { class: "sop-tag" }, `SOP ${sopNumber(task.sop_number)}`),
        task.overdue ? badge("late", t("tasks.overdue")) : null,
        task.escalation_level ? badge("escalated", t("tasks.escalated", { level: task.escalation_level })) : null,
      ),
      h("a", { href: taskLink(task), class: "task-title" }, `${task.step_number}. ${task.activity}`),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, t("tasks.instance")), h("dd", {}, task.instance_title),
        h("dt", {}, t("tasks.sop")), h("dd", {}, task.sop_title),
        h("dt", {}, t("task.lane")), h("dd", {}, task.lane_name),
        h("dt", {}, t("tasks.due")), h("dd", {}, deadline(task)),
        task.late_by ? [h("dt", {}, t("tasks.late")), h("dd", { class: "late" }, formatDuration(task.late_by))] : null,
        task.assignee ? [h("dt", {}, t("tasks.assignee")), h("dd", {}, task.assignee)] : null,
      ),
      h("div", { class: "actions" }, h("a", { href: taskLink(task), class: "button primary" }, t("tasks.open")), claim),
    );
  });
  main.replaceChildren(heading, message, h("ul", { class: "task-list" }, rows));
}

function list(items) {
  return items.length ? h("ul", {}, items.map((item) => h("li", {}, item))) : h("p", {}, "-");
}

export async function taskView(main, instanceId, taskId) {
  const instance = await api(`/v1/instances/${encodeURIComponent(instanceId)}`);
  const task = instance.tasks.find((item) => item.id === taskId);
  if (!task) throw new Error(t("problem.not_found"));
  const sop = await definition(instance.sop, instance.sop_version);
  const step = sop.steps.find((item) => item.id === task.step_id);
  const message = h("div", { class: "messages" });
  const parts = [
    h("p", { class: "crumbs" }, h("a", { href: `#/instances/${encodeURIComponent(instance.id)}` }, `SOP ${sopNumber(sop.number)} · ${instance.title}`)),
    h("h1", {}, t("task.title", { number: step.number, activity: step.activity })),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, t("task.lane")), h("dd", {}, task.lane_name),
      h("dt", {}, t("task.status")), h("dd", {}, t(`status.${task.status}`)),
      h("dt", {}, t("tasks.due")), h("dd", {}, deadline(task), task.overdue ? [" ", badge("late", t("tasks.overdue"))] : null),
      step.time_standard ? [h("dt", {}, t("task.time")), h("dd", {}, step.time_standard.source_text)] : null,
      task.assignee ? [h("dt", {}, t("tasks.assignee")), h("dd", {}, task.assignee)] : null,
    ),
    h("section", {}, h("h2", {}, t("task.requirements")), list(step.requirements || [])),
    h("section", {}, h("h2", {}, t("task.output")), h("p", {}, step.output || "-")),
  ];
  const before = instance.tasks.filter((item) => item.status === "completed");
  if (before.length) {
    parts.push(h("section", {}, h("h2", {}, t("task.sofar")), h("ol", { class: "timeline" }, before.map((item) =>
      h("li", {}, h("time", { datetime: item.completed_at }, formatInstant(item.completed_at)), " ",
        `${item.step_number}. ${item.activity}`, " — ", h("strong", {}, item.completed_by || ""),
        item.outcome ? ` — ${t("event.outcome", { outcome: item.outcome.replaceAll("_", " ") })}` : "",
        item.note ? ` — ${t("event.note", { note: item.note })}` : "")))));
  }
  if (task.status !== "open") {
    main.replaceChildren(...parts, notice("info", t("task.closed")));
    return;
  }
  const note = h("textarea", { name: "note", rows: 3, maxlength: 4000 });
  const evidence = h("textarea", { name: "evidence", rows: 2 });
  const file = h("input", { type: "file", name: "file" });
  const uploaded = [];
  const uploadMessage = h("div", { class: "messages" });
  file.addEventListener("change", () => {
    if (!file.files.length) return;
    const chosen = file.files[0];
    act(file, uploadMessage, async () => {
      const form = new FormData();
      form.append("file", chosen);
      form.append("task", task.id);
      const stored = await api(`/v1/instances/${encodeURIComponent(instance.id)}/files`, { method: "POST", body: form });
      uploaded.push(stored.id);
      file.value = "";
      // An attached file is an event of the instance: its version (If-Match) moved on.
      instance.version = (await api(`/v1/instances/${encodeURIComponent(instance.id)}`)).version;
      return t("task.uploaded", { name: chosen.name });
    });
  });
  const complete = async (button, outcome) => {
    const references = evidence.value.split("\n").map((line) => line.trim()).filter(Boolean);
    const ok = await act(button, message, () =>
      api(`/v1/instances/${encodeURIComponent(instance.id)}/transitions`, {
        method: "POST",
        headers: { "If-Match": `"${instance.version}"` },
        json: { task: task.id, outcome, note: note.value || undefined, evidence: [...uploaded, ...references] },
      }),
    );
    if (ok) {
      location.hash = `#/instances/${encodeURIComponent(instance.id)}?done=1`;
    }
  };
  let buttons;
  if (task.outcomes && task.outcomes.length) {
    buttons = h("div", { class: "outcomes", role: "group", "aria-label": t("task.outcome") },
      h("span", {}, t("task.outcome")),
      task.outcomes.map((outcome) => {
        const button = h("button", { type: "button", class: "primary outcome" }, outcome.replaceAll("_", " "));
        button.addEventListener("click", () => complete(button, outcome));
        return button;
      }),
    );
  } else {
    const label = task.kind === "external" ? t("task.record") : t("task.complete");
    const button = h("button", { type: "button", class: "primary" }, label);
    button.addEventListener("click", () => complete(button, undefined));
    buttons = h("div", { class: "outcomes" }, button);
  }
  const assignee = h("input", { name: "assignee", autocomplete: "off", maxlength: 200 });
  const assignMessage = h("div", { class: "messages" });
  const assignButton = h("button", { type: "submit" }, t("task.assign.submit"));
  const assign = h(
    "form",
    {
      class: "inline",
      onsubmit: (event) => {
        event.preventDefault();
        act(assignButton, assignMessage, async () => {
          await api(`/v1/tasks/${encodeURIComponent(task.id)}/assign`, { method: "POST", json: { assignee: assignee.value.trim() } });
          return t("task.assigned", { who: assignee.value.trim() });
        });
      },
    },
    field(t("task.assign.to"), assignee),
    assignButton,
  );
  main.replaceChildren(
    ...parts,
    h(
      "section",
      { class: "card" },
      field(t("task.note"), note),
      field(t("task.evidence"), evidence),
      field(t("task.files"), file),
      uploadMessage,
      buttons,
      message,
    ),
    h("details", { class: "card" }, h("summary", {}, t("task.assign")), assign, assignMessage),
  );
}
