import { drawFlow } from "../diagram.js";
import { t } from "../i18n.js";
import { definition, roleName, sopList, state } from "../state.js";
import { h, sopNumber } from "../ui.js";

export async function sopsView(main) {
  const sops = await sopList();
  main.replaceChildren(
    h("h1", {}, t("sops.title")),
    h("ul", { class: "sop-list" }, sops.map((sop) =>
      h("li", { class: "card" },
        h("a", { href: `#/sops/${encodeURIComponent(sop.code)}`, class: "task-title" }, `SOP ${sopNumber(sop.number)} — ${sop.title}`),
        h("p", {}, t("sops.steps", { count: sop.step_count }), " · ", sop.lanes.map(roleName).join(", "))))),
  );
}

function section(title, items) {
  const values = Array.isArray(items) ? items : items ? [items] : [];
  return h("section", {}, h("h2", {}, title),
    values.length ? h("ul", {}, values.map((item) => h("li", {}, item))) : h("p", {}, "-"));
}

export async function sopView(main, code) {
  const sop = await definition(code);
  const steps = [...sop.steps].sort((a, b) => a.number - b.number);
  main.replaceChildren(
    h("h1", {}, `SOP ${sopNumber(sop.number)} — ${sop.title}`),
    h("p", {}, t("sop.version", { version: sop.version }), " · ",
      h("a", { href: `/v1/sops/${encodeURIComponent(sop.code)}/document?format=html`, target: "_blank", rel: "noopener" }, t("sops.document")),
      " · ", h("a", { href: `#/start?sop=${encodeURIComponent(sop.code)}` }, t("sops.start"))),
    section(t("sop.legal"), sop.legal_basis),
    section(t("sop.qualifications"), sop.qualifications),
    section(t("sop.related"), sop.related),
    section(t("sop.equipment"), sop.equipment),
    section(t("sop.warning"), sop.warning),
    section(t("sop.records"), sop.records),
    h("section", {}, h("h2", {}, t("instance.diagram")),
      h("div", { class: "diagram" }, drawFlow(sop, state.roles, { label: `${t("instance.diagram")}: ${sop.title}` }))),
    h("section", {}, h("h2", {}, t("sop.steps")),
      h("ol", { class: "steps" }, steps.map((step) =>
        h("li", { value: step.number },
          h("strong", {}, step.activity), " — ", roleName(step.lane),
          step.time_standard ? ` — ${step.time_standard.source_text}` : "",
          step.outcomes ? h("div", { class: "hint" }, Object.keys(step.outcomes).join(" / ")) : null)))),
  );
}
