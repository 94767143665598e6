// The console's only way to Alur: the public /v1 API with a Bearer token.
import { problemText, t } from "./i18n.js";

const STORE = window.sessionStorage;
const KEY = "alur.session";
const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000, 30000];

export class ApiError extends Error {
  constructor(status, problem) {
    super(problemText(status, problem));
    this.status = status;
    this.problem = problem || {};
    this.code = this.problem.code || null;
  }
}

export function session() {
  try {
    return JSON.parse(STORE.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

function keep(value) {
  if (value) STORE.setItem(KEY, JSON.stringify(value));
  else STORE.removeItem(KEY);
}

let connectionListener = () => {};
export function onConnection(listener) {
  connectionListener = listener;
}

async function send(path, options) {
  // A GET (and a sign-in form) is retried while the connection is lost or Alur answers
  // 503; an action that changes something is not, so it is never done twice.
  const retry = (options.method || "GET") === "GET";
  for (let attempt = 0; ; attempt += 1) {
    let response;
    try {
      response = await fetch(path, options);
    } catch (error) {
      if (!retry || attempt >= RETRY_DELAYS_MS.length) {
        connectionListener("lost");
        throw new ApiError(0, { code: "connection_lost" });
      }
      connectionListener("retrying");
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt]));
      continue;
    }
    if (response.status === 503 && retry && attempt < RETRY_DELAYS_MS.length) {
      connectionListener("retrying");
      const after = Number(response.headers.get("Retry-After")) * 1000;
      await new Promise((resolve) => setTimeout(resolve, after || RETRY_DELAYS_MS[attempt]));
      continue;
    }
    connectionListener("ok");
    return response;
  }
}

async function refreshed() {
  const current = session();
  if (!current || !current.refresh) return false;
  const response = await send("/v1/auth/refresh", {
    method: "POST",
    body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: current.refresh }),
  });
  if (!response.ok) {
    keep(null);
    return false;
  }
  const answer = await response.json();
  keep({ ...current, access: answer.access_token, refresh: answer.refresh_token });
  return true;
}

async function problemOf(response) {
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }
  return null;
}

// `api(path, {method, json, form, body, headers, raw})`: JSON in and out; `raw` answers
// the Response itself (downloads).
export async function api(path, options = {}) {
  const headers = { Accept: "application/json, application/problem+json", ...options.headers };
  let body = options.body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  }
  for (let tries = 0; tries < 2; tries += 1) {
    const current = session();
    if (current && current.access) headers.Authorization = `Bearer ${current.access}`;
    const response = await send(path, { method: options.method || "GET", headers, body });
    if (response.status === 401 && tries === 0 && (await refreshed())) continue;
    if (response.status === 401) {
      keep(null);
      window.dispatchEvent(new Event("alur:signed-out"));
    }
    if (!response.ok) throw new ApiError(response.status, await problemOf(response));
    if (options.raw) return response;
    if (response.status === 204) return null;
    return response.json();
  }
  throw new ApiError(401, null);
}

export async function signIn(username, password, totp) {
  const form = new URLSearchParams({ grant_type: "password", username, password });
  if (totp) form.set("totp", totp);
  const response = await send("/v1/auth/token", { method: "POST", body: form });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  const answer = await response.json();
  keep({ access: answer.access_token, refresh: answer.refresh_token });
}

export function useToken(token) {
  keep({ access: token.trim(), refresh: null });
}

export async function signOut() {
  const current = session();
  keep(null);
  if (current && current.refresh) {
    try {
      await send("/v1/auth/logout", {
        method: "POST",
        body: new URLSearchParams({ refresh_token: current.refresh }),
      });
    } catch {
      // Signed out here whatever the server says; the refresh token expires anyway.
    }
  }
}

// An id for Idempotency-Key: crypto.randomUUID needs a secure context, which an office
// LAN address over plain HTTP is not; getRandomValues works everywhere.
export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

export function describe(error) {
  return error instanceof ApiError ? error.message : t("error.unknown");
}
