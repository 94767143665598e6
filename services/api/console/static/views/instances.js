import { api, newKey } from "../api.js";
import { drawFlow } from "../diagram.js";
import { formatInstant, t } from "../i18n.js";
import { definition, roleName, sopList, state } from "../state.js";
import { act, badge, field, h, notice, saveBlob, sopNumber, table } from "../ui.js";

export async function startView(main, params) {
  const sops = await sopList();
  const message = h("div", { class: "messages" });
  const select = h("select", { name: "sop", required: true },
    h("option", { value: "" }, t("start.choose")),
    sops.map((sop) => h("option", { value: sop.code }, `${sopNumber(sop.number)} — ${sop.title}`)),
  );
  const title = h("input", { name: "title", required: true, maxlength: 300 });
  const entry = h("select", { name: "entry_point" });
  const entryField = field(t("start.entry"), entry);
  entryField.hidden = true;
  const context = h("textarea", { name: "context", rows: 3, spellcheck: "false" });
  const showEntries = async () => {
    entry.replaceChildren();
    entryField.hidden = true;
    if (!select.value) return;
    const sop = await definition(select.value);
    if (sop.entry_points.length > 1) {
      for (const id of sop.entry_points) {
        const step = sop.steps.find((item) => item.id === id);
        entry.append(h("option", { value: id }, `${step.number}. ${step.activity}`));
      }
      entryField.hidden = false;
    }
  };
  select.addEventListener("change", showEntries);
  if (params.get("sop")) {
    select.value = params.get("sop");
    await showEntries();
  }
  const submit = h("button", { type: "submit", class: "primary" }, t("start.submit"));
  const key = newKey();
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        let started;
        const ok = await act(submit, message, async () => {
          const values = {};
          context.value.split("\n").forEach((line, index) => {
            if (!line.trim()) return;
            const at = line.indexOf("=");
            if (at < 1) throw new Error(t("start.bad_context", { line: index + 1 }));
            values[line.slice(0, at).trim()] = line.slice(at + 1).trim();
          });
          started = await api("/v1/instances", {
            method: "POST",
            headers: { "Idempotency-Key": key },
            json: {
              sop: select.value,
              title: title.value,
              entry_point: entryField.hidden ? undefined : entry.value,
              context: values,
            },
          });
        });
        if (ok) location.hash = `#/instances/${encodeURIComponent(started.id)}`;
      },
    },
    field(t("start.sop"), select),
    field(t("start.titlefield"), title),
    entryField,
    field(t("start.context"), context),
    submit,
    message,
  );
  main.replaceChildren(h("h1", {}, t("start.title")), form);
  select.focus();
}

function statusBadge(status) {
  const kind = { active: "info", completed: "ok", cancelled: "muted" }[status] || "info";
  return badge(kind, t(`status.${status}`));
}

export async function instancesView(main) {
  const body = h("div", {});
  let cursor = null;
  const rows = [];
  const more = h("button", { type: "button" }, t("instances.more"));
  const load = async () => {
    const query = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
    const page = await api(`/v1/instances${query}`);
    cursor = page.next_cursor;
    for (const item of page.items) {
      rows.push([
        h("a", { href: `#/instances/${encodeURIComponent(item.id)}` }, item.title),
        item.sop,
        statusBadge(item.status),
        formatInstant(item.started_at),
      ]);
    }
    body.replaceChildren(table(t("instances.title"), [t("tasks.instance"), t("tasks.sop"), t("instances.state"), t("instances.started")], rows));
    more.hidden = !cursor;
  };
  more.addEventListener("click", () => act(more, body, load));
  await load();
  main.replaceChildren(h("h1", {}, t("instances.title")), body, more);
}

function eventText(event, sop, stepOfTask) {
  const data = event.data || {};
  const after = data.after || {};
  const stepId = after.step_id || stepOfTask.get(event.task_id);
  const step = sop.steps.find((item) => item.id === stepId);
  const key = `event.${event.type}`;
  const pieces = [
    t(key, {
      step: step ? `${step.number}. ${step.activity}` : stepId || "",
      to: data.to_role ? roleName(data.to_role) : after.assignee || "",
      reason: data.reason || "",
      version: data.to_version || "",
      text: data.text || "",
      name: data.name || "",
    }),
  ];
  if (event.type === "task.completed") {
    if (data.outcome || after.outcome) pieces.push(t("event.outcome", { outcome: (data.outcome || after.outcome).replaceAll("_", " ") }));
    if (after.note) pieces.push(t("event.note", { note: after.note }));
  }
  if (event.acting_for && event.acting_for.role) {
    pieces.push(`(${event.acting_for.kind === "plt" ? "Plt." : "Plh."} ${roleName(event.acting_for.role)})`);
  }
  return pieces.join(" — ");
}

export async function instanceView(main, id, params) {
  const path = `/v1/instances/${encodeURIComponent(id)}`;
  const [instance, events, audit, files] = await Promise.all([
    api(path),
    api(`${path}/events`),
    api(`${path}/audit`),
    api(`${path}/files`).catch(() => ({ items: [] })),
  ]);
  const sop = await definition(instance.sop, instance.sop_version);
  const open = instance.tasks.filter((task) => task.status === "open");
  const done = instance.tasks.filter((task) => task.status === "completed").map((task) => task.step_id);
  const stepOfTask = new Map(instance.tasks.map((task) => [task.id, task.step_id]));
  const parts = [
    h("p", { class: "crumbs" }, h("a", { href: `#/sops/${encodeURIComponent(sop.code)}` }, `SOP ${sopNumber(sop.number)} — ${sop.title}`)),
    h("h1", {}, instance.title, " ", statusBadge(instance.status)),
  ];
  if (params.get("done")) parts.push(notice("ok", t("task.done")));
  parts.push(
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, t("instances.started")), h("dd", {}, formatInstant(instance.started_at)),
      instance.due_at ? [h("dt", {}, t("tasks.due")), h("dd", {}, formatInstant(instance.due_at))] : null,
      Object.keys(instance.context || {}).length
        ? [h("dt", {}, t("instance.context")), h("dd", {}, Object.entries(instance.context).map(([k, v]) => h("div", {}, `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)))]
        : null,
    ),
  );
  parts.push(
    h(
      "section",
      {},
      h("h2", {}, t("instance.open")),
      open.length
        ? h("ul", { class: "plain" }, open.map((task) =>
            h("li", {}, h("a", { href: `#/instances/${encodeURIComponent(id)}/tasks/${encodeURIComponent(task.id)}` }, `${task.step_number}. ${task.activity}`),
              " — ", task.lane_name, task.due_at ? ` — ${formatInstant(task.due_at)}` : "",
              task.overdue ? [" ", badge("late", t("tasks.overdue"))] : null)))
        : h("p", {}, "-"),
    ),
  );
  const diagram = drawFlow(sop, state.roles, {
    current: open.map((task) => task.step_id),
    done,
    label: `${t("instance.diagram")}: ${sop.title}. ${t("instance.current")}: ${open.map((task) => task.activity).join("; ") || "-"}`,
  });
  parts.push(h("section", {}, h("h2", {}, t("instance.diagram")), h("div", { class: "diagram" }, diagram)));
  parts.push(
    h(
      "section",
      {},
      h("h2", {}, t("instance.timeline")),
      h("ol", { class: "timeline" }, events.items.map((event) =>
        h("li", {}, h("time", { datetime: event.occurred_at }, formatInstant(event.occurred_at)), " ",
          h("strong", {}, event.actor_name || event.actor), " ", eventText(event, sop, stepOfTask)))),
    ),
  );
  if (files.items && files.items.length) {
    const message = h("div", { class: "messages" });
    parts.push(h("section", {}, h("h2", {}, t("instance.files")),
      h("ul", { class: "plain files" }, files.items.map((file) => {
        const download = h("button", { type: "button", class: "link" }, file.name);
        download.addEventListener("click", () => act(download, message, async () => {
          const response = await api(`/v1/files/${encodeURIComponent(file.id)}`, { raw: true });
          saveBlob(await response.blob(), file.name);
        }));
        return h("li", {}, download, ` — ${file.media_type}, ${Math.max(1, Math.round(file.size / 1024))} KB, `,
          formatInstant(file.uploaded_at));
      })), message));
  }
  parts.push(
    h("section", {}, h("h2", {}, t("instance.audit")),
      audit.valid
        ? notice("ok", t("instance.audit.ok", { count: audit.events }))
        : notice("error", t("instance.audit.bad", { reason: audit.problems.join("; ") }))),
  );
  if (instance.status === "active") parts.push(commentForm(path, main, id, params), cancelForm(path));
  main.replaceChildren(...parts);
}

function commentForm(path, main, id, params) {
  const text = h("textarea", { name: "text", rows: 2, maxlength: 4000, required: true });
  const kind = h("select", { name: "kind" },
    h("option", { value: "note" }, t("instance.comment.note")),
    h("option", { value: "tindak_lanjut" }, t("instance.comment.followup")));
  const message = h("div", { class: "messages" });
  const submit = h("button", { type: "submit" }, t("instance.comment.submit"));
  return h(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        const ok = await act(submit, message, () =>
          api(`${path}/comments`, { method: "POST", json: { text: text.value, kind: kind.value } }));
        if (ok) {
          await instanceView(main, id, params);
          main.append(notice("ok", t("instance.commented")));
        }
      },
    },
    h("h2", {}, t("instance.comment")),
    field(t("instance.comment.text"), text),
    field(t("instance.comment.kind"), kind),
    submit,
    message,
  );
}

function cancelForm(path) {
  const reason = h("input", { name: "reason", required: true, maxlength: 2000 });
  const message = h("div", { class: "messages" });
  const submit = h("button", { type: "submit", class: "danger" }, t("instance.cancel"));
  return h(
    "details",
    { class: "card" },
    h("summary", {}, t("instance.cancel")),
    h(
      "form",
      {
        onsubmit: async (event) => {
          event.preventDefault();
          const ok = await act(submit, message, () =>
            api(`${path}/cancel`, { method: "POST", json: { reason: reason.value } }));
          if (ok) message.append(notice("ok", t("instance.cancelled")));
        },
      },
      field(t("instance.cancel.reason"), reason),
      submit,
      message,
    ),
  );
}
