// The incidents board and an incident's page. The board fetches itself again on
// every incident.* event; an incident's page does so for its own incident, and
// posts notes, bookmarks and the close through /api/incidents/{id}/...

import { api, listen, messages, swap, toast } from "./panel.js";

const words = messages();
// the bus's incident events, by name (/api/events takes no pattern)
const EVENTS = ["incident.opened", "incident.updated", "incident.camera_linked", "incident.closed"];
const board = document.getElementById("board");
const detail = document.getElementById("incident");

function later(fn) {
  // events come in bursts (opened, camera_linked, updated): one refresh for them
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, 150); };
}

if (board) {
  const refresh = later(async () => {
    try { await swap(["board"]); } catch { toast(words.lost, "error"); }
  });
  listen(EVENTS, refresh);
}

if (detail) {
  const id = detail.dataset.id;
  const base = `/api/incidents/${id}`;
  const refresh = async () => {
    const fresh = await swap(["incident"]);
    const closed = fresh.getElementById("incident")?.dataset.status === "closed";
    if (closed) document.getElementById("actions")?.remove();
  };
  const again = later(() => refresh().catch(() => {}));
  listen(EVENTS, (event) => {
    const ref = event.incident;
    const about = ref && typeof ref === "object" ? ref.id : ref;
    if (about === undefined || about === null || String(about) === id) again();
  });

  const act = (formId, path, body, done) => {
    const form = document.getElementById(formId);
    if (!form) return;
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        await api(`${base}/${path}`, { method: "POST", body: body(form) });
        form.reset();
        toast(done);
        await refresh();
      } catch (err) {
        toast(`${words.failed} ${err.message}`, "error");
      } finally {
        button.disabled = false;
      }
    });
  };
  act("note-form", "notes", (f) => ({ text: f.text.value }), words.noted);
  act("bookmark-form", "bookmarks", (f) => {
    const body = { camera: f.camera.value, time: f.time.value };
    if (f.note.value) body.note = f.note.value;
    return body;
  }, words.bookmarked);
  act("close-form", "close", (f) => ({ outcome: f.outcome.value }), words.closed);
}
