// Small DOM helpers: every text goes in as text (never as HTML), so nothing an API
// answer holds can run as script.
import { t } from "./i18n.js";

export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      element.className = value;
    } else if (value === true) {
      element.setAttribute(key, "");
    } else {
      element.setAttribute(key, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

export function clear(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

// A message beside the action that failed (or succeeded): role=alert for errors.
export function notice(kind, text) {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

// Runs an action from a form or button: disables it while it runs, shows the API's
// problem (in the reader's language) in `where`, and never leaves a blank page.
export async function act(control, where, action) {
  if (control) control.disabled = true;
  where.replaceChildren();
  try {
    const done = await action();
    if (typeof done === "string") where.append(notice("ok", done));
    return true;
  } catch (error) {
    where.append(notice("error", error.message || t("error.unknown")));
    return false;
  } finally {
    if (control) control.disabled = false;
  }
}

export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const parts = [h("label", { for: id }, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: "field" }, parts);
}

// `hideCaption`: the section's heading already says it; the caption stays for screen
// readers (it names the table).
export function table(caption, headers, rows, { hideCaption = false } = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", { class: hideCaption ? "visually-hidden" : null }, caption),
      h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
      h(
        "tbody",
        {},
        rows.length
          ? rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))
          : h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, t("empty"))),
      ),
    ),
  );
}

// A SOP's number as the documents write it: "08".
export function sopNumber(number) {
  return String(number).padStart(2, "0");
}

export function badge(kind, text) {
  return h("span", { class: `badge ${kind}` }, text);
}

// A download the API answers only with a token: fetched, then saved from a blob.
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name, class: "visually-hidden" }, name);
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
