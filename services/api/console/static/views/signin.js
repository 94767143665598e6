import { signIn, useToken } from "../api.js";
import { t } from "../i18n.js";
import { act, field, h } from "../ui.js";

export function signInView(main, done) {
  const message = h("div", { class: "messages" });
  const username = h("input", { name: "username", autocomplete: "username", required: true });
  const password = h("input", {
    name: "password", type: "password", autocomplete: "current-password", required: true,
  });
  const totp = h("input", {
    name: "totp", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}",
    maxlength: 6,
  });
  const submit = h("button", { type: "submit", class: "primary" }, t("signin.submit"));
  const form = h(
    "form",
    {
      class: "card narrow",
      onsubmit: async (event) => {
        event.preventDefault();
        const ok = await act(submit, message, () =>
          signIn(username.value, password.value, totp.value || undefined),
        );
        if (ok) done();
      },
    },
    h("h1", {}, t("signin.title")),
    field(t("signin.username"), username),
    field(t("signin.password"), password),
    field(t("signin.totp"), totp),
    submit,
    message,
  );
  const token = h("textarea", { name: "token", rows: 3, spellcheck: "false" });
  const tokenMessage = h("div", { class: "messages" });
  const tokenForm = h(
    "form",
    {
      class: "card narrow",
      onsubmit: async (event) => {
        event.preventDefault();
        if (!token.value.trim()) return;
        useToken(token.value);
        const ok = await act(null, tokenMessage, () => done());
        if (!ok) token.focus();
      },
    },
    h("h2", {}, t("signin.token")),
    field(t("signin.token.label"), token),
    h("button", { type: "submit" }, t("signin.token.submit")),
    tokenMessage,
  );
  main.replaceChildren(form, h("details", { class: "narrow" }, h("summary", {}, t("signin.token")), tokenForm));
  username.focus();
}
