// What the console keeps while it runs: who is signed in, role names, SOP definitions.
import { api } from "./api.js";
import { setRoleNames, setZone } from "./i18n.js";

export const state = { me: null, roles: {}, sops: null, definitions: new Map() };

export async function loadMe() {
  const [me, roles] = await Promise.all([api("/v1/me"), api("/v1/roles")]);
  state.me = me;
  state.roles = Object.fromEntries(roles.items.map((role) => [role.id, role.name]));
  setRoleNames(state.roles);
  setZone(me.satker.timezone);
  return me;
}

export function forget() {
  state.me = null;
  state.definitions.clear();
}

export async function sopList() {
  if (!state.sops) state.sops = (await api("/v1/sops")).items;
  return state.sops;
}

export async function definition(code, version) {
  const key = `${code}@${version ?? "current"}`;
  if (!state.definitions.has(key)) {
    const query = version ? `?version=${encodeURIComponent(version)}` : "";
    state.definitions.set(key, await api(`/v1/sops/${encodeURIComponent(code)}${query}`));
  }
  return state.definitions.get(key);
}

export function roleName(id) {
  return state.roles[id] || id;
}
