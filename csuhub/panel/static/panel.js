// The panel's shared module: JSON API calls with the session's CSRF token,
// the /api/events WebSocket, times in the hub's zone, messages from the page.
// Every page module imports what it needs from here; nothing here shows text
// of its own: user-visible words come from the server-rendered page
// (data-* attributes of a <template id="messages">), so they are translated.

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";

export const lang = document.documentElement.lang || "fr";
export const zone = meta("hub-zone") || "Europe/Paris";
let csrf = meta("csrf-token");

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// fetch() against the hub's API: JSON in and out, the CSRF header on unsafe
// methods, errors as ApiError with the API's own message.
export async function api(path, { method = "GET", body, headers = {}, raw = false } = {}) {
  const init = { method, headers: { ...headers }, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD" && csrf) init.headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (raw && response.ok) return response;
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401 && !location.pathname.startsWith("/panel/login")) {
      location.assign(`/panel/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    }
    throw new ApiError(response.status, (data && data.error) || response.statusText, data);
  }
  if (data && typeof data === "object" && data.csrf_token) csrf = data.csrf_token;
  return data;
}

// The page's translated messages: <template id="messages" data-key="...">.
export function messages(id = "messages") {
  const node = document.getElementById(id);
  return node ? { ...node.dataset } : {};
}

// A message's %(name)s placeholders filled from `values` (Python's named
// format, as the catalogues write them); a missing value leaves nothing.
export function fill(template, values) {
  return (template || "").replace(/%\((\w+)\)s/g, (_, key) => String(values[key] ?? ""));
}

// Parts of the page (by id) brought up to date: the page is fetched again (the
// server renders them, in the page's language and with the reader's masking)
// and each part swapped in. Returns the fetched document.
export async function swap(ids, url = location.pathname + location.search) {
  const answer = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!answer.ok) throw new Error(String(answer.status));
  const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
  for (const id of ids) {
    const now = document.getElementById(id);
    const next = fresh.getElementById(id);
    if (now && next) now.replaceWith(document.importNode(next, true));
  }
  return fresh;
}

// A short status line for the screen reader and the eye.
export function toast(text, kind = "info") {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = text;
  box.className = kind;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.textContent = ""; box.className = ""; }, 6000);
}

// A time in the hub's zone and the page's language, with the zone's name.
export function when(value, options = {}) {
  if (value === null || value === undefined || value === "") return "—";
  const moment = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  // explicit fields: Intl refuses timeZoneName beside dateStyle/timeStyle
  return new Intl.DateTimeFormat(lang === "fr" ? "fr-FR" : "en-GB", {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    second: "2-digit", timeZone: zone, timeZoneName: "short", ...options,
  }).format(moment);
}

// Listen to the bus (filtered by the server for this session), reconnecting
// with backoff. ``names``: exact event names (the API takes no patterns:
// list incident.opened, incident.updated...). Returns stop().
export function listen(names, onEvent) {
  let ws = null;
  let stopped = false;
  let attempt = 0;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = names && names.length ? `?events=${encodeURIComponent(names.join(","))}` : "";
  const open = () => {
    ws = new WebSocket(`${scheme}//${location.host}/api/events${query}`);
    ws.onmessage = (msg) => {
      attempt = 0;
      let event;
      try { event = JSON.parse(msg.data); } catch { return; }
      if (event.event === "hello") return;
      onEvent(event);
    };
    ws.onclose = () => {
      if (stopped) return;
      const wait = Math.min(15, 2 ** attempt);
      attempt += 1;
      setTimeout(open, wait * 1000);
    };
  };
  open();
  return () => { stopped = true; ws?.close(); };
}

// Build an element: el("td", {class: "x", text: "..."}, child...).
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && key !== "list") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

const logout = document.getElementById("logout");
if (logout) {
  logout.addEventListener("click", async () => {
    try { await api("/api/auth/logout", { method: "POST" }); } finally {
      location.assign("/panel/login");
    }
  });
}
