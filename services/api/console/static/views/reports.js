import { api } from "../api.js";
import { t } from "../i18n.js";
import { act, field, h, saveBlob } from "../ui.js";

async function download(path, name, message) {
  const response = await api(path, { raw: true });
  if (response.status === 202) {
    // A large pack is built by the worker: follow its job, then fetch the file.
    let job = await response.json();
    while (job.status === "queued" || job.status === "running") {
      message.replaceChildren(h("p", { class: "notice info", role: "status" },
        t("reports.preparing", { progress: job.total ? Math.round((100 * job.progress) / job.total) : 0 })));
      await new Promise((resolve) => setTimeout(resolve, 2000));
      job = await api(`/v1/report-jobs/${encodeURIComponent(job.id)}`);
    }
    if (job.status !== "done") throw new Error(job.error || t("error.unknown"));
    saveBlob(await (await api(`/v1/report-jobs/${encodeURIComponent(job.id)}/file`, { raw: true })).blob(), name);
  } else {
    saveBlob(await response.blob(), name);
  }
  return t("reports.ready");
}

function card(title, inputs, buttons) {
  const message = h("div", { class: "messages" });
  return h("section", { class: "card" }, h("h2", {}, title), inputs,
    h("div", { class: "actions" }, buttons.map(([label, path, name]) => {
      const button = h("button", { type: "button" }, label);
      button.addEventListener("click", () => act(button, message, () => download(path(), name(), message)));
      return button;
    })), message);
}

export function reportsView(main) {
  const today = new Date();
  const year = today.getFullYear();
  const quarter = `${year}-Q${Math.floor(today.getMonth() / 3) + 1}`;
  const from = h("input", { type: "date", name: "from", value: `${year}-01-01` });
  const to = h("input", { type: "date", name: "to", value: today.toISOString().slice(0, 10) });
  const yearInput = h("input", { type: "number", name: "year", min: 2000, max: 2999, value: year });
  const period = h("input", { name: "period", value: quarter, maxlength: 7, pattern: "[0-9]{4}(-Q[1-4]|-[0-9]{2})?" });
  const range = () => `from=${encodeURIComponent(from.value)}&to=${encodeURIComponent(to.value)}`;
  main.replaceChildren(
    h("h1", {}, t("reports.title")),
    h("div", { class: "card" }, field(t("reports.from"), from), field(t("reports.to"), to)),
    card(t("reports.performance"), null, [
      [t("reports.download", { format: "CSV" }), () => `/v1/reports/sop-performance?format=csv&${range()}`, () => `kinerja-sop-${from.value}-${to.value}.csv`],
      [t("reports.download", { format: "XLSX" }), () => `/v1/reports/sop-performance?format=xlsx&${range()}`, () => `kinerja-sop-${from.value}-${to.value}.xlsx`],
    ]),
    card(t("reports.pack"), null, [
      [t("reports.download", { format: "ZIP" }), () => `/v1/reports/evidence-pack?${range()}`, () => `paket-bukti-${from.value}-${to.value}.zip`],
    ]),
    card(t("reports.indicators"), field(t("reports.year"), yearInput), [
      [t("reports.download", { format: "CSV" }), () => `/v1/reports/indicators?format=csv&year=${encodeURIComponent(yearInput.value)}`, () => `sakip-${yearInput.value}.csv`],
      [t("reports.download", { format: "XLSX" }), () => `/v1/reports/indicators?format=xlsx&year=${encodeURIComponent(yearInput.value)}`, () => `sakip-${yearInput.value}.xlsx`],
    ]),
    card(t("reports.monev"), field(t("reports.period"), period), [
      [t("reports.download", { format: "PDF" }), () => `/v1/reports/monev?period=${encodeURIComponent(period.value)}`, () => `monev-sop-${period.value}.pdf`],
    ]),
  );
}
