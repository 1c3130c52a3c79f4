// The administration pages: check and reload the site file, manage accounts,
// tokens and sessions, all through the JSON API (same permissions and audit).
// Lists are rendered by the server: after a change, the page's table is
// fetched again and swapped in, so there is one way to draw a row.
import { api, el, messages, swap, toast } from "./panel.js";

const words = messages();

function refused(err) {
  toast(`${words.failed} ${err.message}`, "error");
}

// The table ``id`` as the server renders it now.
const refresh = (id) => swap([id], location.pathname);

function showSecret(who, value) {
  const box = document.getElementById("secret");
  document.getElementById("secret-who").textContent = who;
  document.getElementById("secret-value").textContent = value;
  box.hidden = false;
}

// -- the site file ------------------------------------------------------------

function where(issue) {
  if (!issue.file) return "";
  const name = issue.file.split("/").pop();
  return issue.line ? `${name}:${issue.line}:${issue.column ?? 1}` : name;
}

function issueList(issues, cls) {
  return el("ul", { class: `issues ${cls}` }, ...issues.map((issue) => el("li", {},
    el("code", { class: "where", text: where(issue) }), " ",
    issue.path ? el("code", { class: "path", text: issue.path }) : null, " ",
    el("span", { text: issue.message + (issue.hint ? ` (${issue.hint})` : "") }))));
}

function showConfig(...parts) {
  document.getElementById("config-result").replaceChildren(...parts);
}

async function check() {
  try {
    const report = await api("/api/config/check");
    const parts = report.valid
      ? [el("p", { class: "ok", text: words.valid })]
      : [el("p", { class: "error", text: words.invalid }), issueList(report.errors, "errors")];
    if (report.warnings.length) parts.push(el("p", { class: "warn", text: words.warnings }), issueList(report.warnings, "warnings"));
    showConfig(...parts);
  } catch (err) { refused(err); }
}

async function reload() {
  try {
    const report = await api("/api/config/reload", { method: "POST" });
    const diff = report.diff || {};
    const parts = [el("p", { class: "ok", text: `${words.reloaded} ${(diff.sections || []).join(", ") || words.nothing}` })];
    if ((diff.restart_required || []).length) parts.push(el("p", { class: "warn", text: `${words.restart} ${diff.restart_required.join(", ")}` }));
    showConfig(...parts);
  } catch (err) {
    if (err.status !== 422 || !err.body) { refused(err); return; }
    const issues = (err.body.issues || []).filter((i) => i.severity === "error");
    const fallback = (err.body.errors || []).map((text) => ({ message: text }));
    showConfig(el("p", { class: "error", text: words.refused }), issueList(issues.length ? issues : fallback, "errors"));
  }
}

document.getElementById("config-check")?.addEventListener("click", check);
document.getElementById("config-reload")?.addEventListener("click", reload);

// -- accounts -----------------------------------------------------------------

const splitScope = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
const user = (name) => `/api/users/${encodeURIComponent(name)}`;

async function userAction(form, action) {
  const name = form.dataset.user;
  try {
    if (action === "grant" || action === "revoke") {
      const body = {};
      if (form.role.value) body.roles = [form.role.value];
      const scope = splitScope(form.scope.value);
      if (scope.length) body.scope = scope;
      if (!body.roles && !body.scope) { toast(words.choose, "error"); return; }
      await api(`${user(name)}/${action}`, { method: "POST", body });
    } else if (action === "disable") {
      if (!confirm(words.confirmDisable)) return;
      await api(`${user(name)}/disable`, { method: "POST" });
    } else if (action === "enable") {
      await api(`${user(name)}/enable`, { method: "POST" });
    } else if (action === "password") {
      if (!confirm(words.confirmPassword)) return;
      const answer = await api(`${user(name)}/password`, { method: "POST" });
      if (answer.password) showSecret(name, answer.password);
    }
    toast(words.done);
    await refresh("users-table");
  } catch (err) { refused(err); }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const action = button.dataset.action;
  const form = button.closest("form.change");
  if (form) userAction(form, action);
  else if (action === "revoke-token") revokeToken(button.dataset.token);
  else if (action === "end-session") endSession(button.dataset.session);
});

document.getElementById("add-user")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = { name: form.name.value.trim(), roles: [form.role.value], scope: splitScope(form.scope.value) };
  if (form.password.value) body.password = form.password.value;
  try {
    const answer = await api("/api/users", { method: "POST", body });
    if (answer.password) showSecret(answer.name, answer.password);
    form.reset();
    toast(words.done);
    await refresh("users-table");
  } catch (err) { refused(err); }
});

// -- tokens and sessions ------------------------------------------------------

async function revokeToken(name) {
  if (!confirm(words.confirmRevoke)) return;
  try {
    await api(`/api/tokens/${encodeURIComponent(name)}/revoke`, { method: "POST" });
    toast(words.done);
    await refresh("tokens-table");
  } catch (err) { refused(err); }
}

document.getElementById("add-token")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = { name: form.name.value.trim(), role: form.role.value };
  if (form.user.value.trim()) body.user = form.user.value.trim();
  try {
    const answer = await api("/api/tokens", { method: "POST", body });
    showSecret(answer.name, answer.token);
    form.reset();
    await refresh("tokens-table");
  } catch (err) { refused(err); }
});

async function endSession(id) {
  if (!confirm(words.confirmEnd)) return;
  try {
    await api(`/api/sessions/${encodeURIComponent(id)}/end`, { method: "POST" });
    toast(words.done);
    await refresh("sessions-table");
  } catch (err) { refused(err); }
}
