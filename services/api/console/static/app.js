// The staff console: a client of Alur's public /v1 API, routed by the URL's hash.
import { ApiError, onConnection, session, signOut } from "./api.js";
import { lang, setLang, t } from "./i18n.js";
import { forget, loadMe, state } from "./state.js";
import { h, notice } from "./ui.js";
import { sopView, sopsView } from "./views/catalog.js";
import { instancesView, instanceView, startView } from "./views/instances.js";
import { operationsView, overviewView } from "./views/operations.js";
import { reportsView } from "./views/reports.js";
import { signInView } from "./views/signin.js";
import { inboxView, taskView } from "./views/tasks.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const connection = document.getElementById("connection");
const toggle = document.getElementById("menu-toggle");
const language = document.getElementById("lang");

const ROUTES = [
  [/^\/tasks$/, () => inboxView(main)],
  [/^\/instances\/([^/]+)\/tasks\/([^/]+)$/, (m) => taskView(main, decodeURIComponent(m[1]), decodeURIComponent(m[2]))],
  [/^\/instances\/([^/]+)$/, (m, params) => instanceView(main, decodeURIComponent(m[1]), params)],
  [/^\/instances$/, () => instancesView(main)],
  [/^\/start$/, (_, params) => startView(main, params)],
  [/^\/sops$/, () => sopsView(main)],
  [/^\/sops\/([^/]+)$/, (m) => sopView(main, decodeURIComponent(m[1]))],
  [/^\/operations$/, () => operationsView(main)],
  [/^\/reports$/, () => reportsView(main)],
  [/^\/overview$/, () => overviewView(main)],
];

function translateStatic() {
  for (const element of document.querySelectorAll("[data-t]")) element.textContent = t(element.dataset.t);
  document.querySelector("nav").setAttribute("aria-label", t("menu"));
}

function drawNav() {
  const links = [
    ["#/tasks", "nav.tasks"], ["#/start", "nav.start"], ["#/instances", "nav.instances"],
    ["#/sops", "nav.sops"], ["#/operations", "nav.operations"], ["#/reports", "nav.reports"],
  ];
  if (state.me && state.me.supervisor) links.push(["#/overview", "nav.overview"]);
  const here = location.hash.split("?")[0];
  const out = h("button", { type: "button", class: "link" }, t("nav.signout"));
  out.addEventListener("click", async () => {
    await signOut();
    forget();
    location.hash = "#/tasks";
    render();
  });
  nav.replaceChildren(
    h("ul", {}, links.map(([href, key]) => h("li", {}, h("a", { href, "aria-current": here.startsWith(href) ? "page" : false }, t(key)))),
      h("li", {}, out)),
  );
  nav.hidden = !state.me || (window.innerWidth < 720 && toggle.getAttribute("aria-expanded") !== "true");
  toggle.hidden = !state.me;
  const acting = (state.me && state.me.acting) || [];
  who.replaceChildren(
    state.me
      ? h("span", {}, h("strong", {}, state.me.name || state.me.sub), " · ",
          state.me.roles.map((role) => role.name).join(", "),
          acting.length ? [" · ", acting.map((grant) => `${grant.kind === "plt" ? "Plt." : "Plh."} ${grant.role_name}`).join(", ")] : null)
      : "",
  );
}

async function render() {
  translateStatic();
  language.value = lang();
  if (!session()) {
    state.me = null;
    drawNav();
    signInView(main, async () => {
      await loadMe();
      if (!location.hash || location.hash === "#/") location.hash = "#/tasks";
      await render();
    });
    return;
  }
  if (!state.me) {
    try {
      await loadMe();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return render();
      main.replaceChildren(notice("error", t("error.page", { message: error.message })));
      return;
    }
  }
  drawNav();
  const [path, query] = (location.hash.slice(1) || "/tasks").split("?");
  const params = new URLSearchParams(query || "");
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  main.setAttribute("aria-busy", "true");
  try {
    if (!route) {
      main.replaceChildren(notice("error", t("error.notfound")));
    } else {
      await route[1](path.match(route[0]), params);
    }
  } catch (error) {
    main.replaceChildren(
      h("h1", {}, t("error.page", { message: "" }).replace(/[:\s]+$/, "")),
      notice("error", error.message || t("error.unknown")),
    );
  } finally {
    main.removeAttribute("aria-busy");
  }
}

onConnection((status) => {
  connection.hidden = status === "ok";
  if (status !== "ok") connection.textContent = t(`connection.${status}`);
});
toggle.addEventListener("click", () => {
  const open = toggle.getAttribute("aria-expanded") !== "true";
  toggle.setAttribute("aria-expanded", String(open));
  nav.hidden = !open;
});
language.addEventListener("change", () => {
  setLang(language.value);
  render();
});
window.addEventListener("hashchange", () => {
  if (window.innerWidth < 720) toggle.setAttribute("aria-expanded", "false");
  render().then(() => main.focus({ preventScroll: false }));
});
window.addEventListener("alur:signed-out", () => {
  forget();
});
window.addEventListener("resize", () => drawNav());
setLang(lang());
render();
