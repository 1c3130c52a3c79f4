// Discovery and adoption: "scan now" posts to /api/discovery/scan and, while
// the scan listens, reads /api/discovery every second so that each camera
// shows as soon as it answers; "adopt" posts the prefectoral authorisation
// and the camera's place to /api/cameras/{id}/adopt (validated and audited
// there). No words here: they come from the page's <template id="messages">.
import { api, el, fill, messages, toast, when } from "./panel.js";

const words = messages();
const table = document.getElementById("found");
const body = table.tBodies[0];
const none = document.getElementById("none-found");
const status = document.getElementById("scan-status");
const panel = document.getElementById("adopt-panel");
const form = document.getElementById("adopt-form");
const said = document.getElementById("adopt-error");
const POLL = 1000;
// Intl refuses timeZoneName beside dateStyle (panel.js's when() asks for both)
const NO_ZONE_NAME = { timeZoneName: undefined };

const stateLabel = (state) => {
  const key = `state${state.split("_").map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join("")}`;
  return words[key] || state;
};

function row(cam) {
  return el("tr", { "data-id": cam.id },
    el("th", { scope: "row" }, cam.name, el("br"), el("code", { class: "muted", text: cam.id })),
    el("td", { text: cam.address || "—" }),
    el("td", { text: cam.driver || "—" }),
    el("td", { text: stateLabel(cam.state) }),
    el("td", { text: when(cam.last_seen, NO_ZONE_NAME) }),
    el("td", {}, el("button", {
      type: "button", class: "adopt secondary", "data-id": cam.id, "data-name": cam.name, text: words.adopt,
    })),
  );
}

function show(cameras) {
  body.replaceChildren(...cameras.map(row));
  table.hidden = cameras.length === 0;
  none.hidden = cameras.length > 0;
}

async function refresh() {
  const data = await api("/api/discovery");
  show(data.cameras);
  return data;
}

const scanForm = document.getElementById("scan-form");
if (scanForm) {
  scanForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = document.getElementById("scan");
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    status.textContent = words.scanning;
    const poll = setInterval(() => refresh().catch(() => {}), POLL);
    try {
      const timeout = Number(scanForm.elements.timeout.value);
      const result = await api("/api/discovery/scan", { method: "POST", body: { timeout } });
      status.textContent = fill(words.scanned, { n: result.found.length });
    } catch (err) {
      status.textContent = fill(words.scanFailed, { error: err.message });
    } finally {
      clearInterval(poll);
      button.disabled = false;
      button.removeAttribute("aria-busy");
      await refresh().catch(() => {});
    }
  });
}

body.addEventListener("click", (event) => {
  const button = event.target.closest("button.adopt");
  if (!button) return;
  form.reset();
  said.hidden = true;
  form.dataset.camera = button.dataset.id;
  form.elements.name.value = button.dataset.name || "";
  document.getElementById("adopt-camera").textContent = button.dataset.id;
  panel.hidden = false;
  form.elements.reference.focus();
});

document.getElementById("adopt-cancel").addEventListener("click", () => {
  panel.hidden = true;
});

// The adoption's body as the API takes it: empty optional fields left out.
function adoption() {
  const value = (name) => form.elements[name].value.trim();
  const authorization = { reference: value("reference"), expires: value("expires") };
  if (value("issued")) authorization.issued = value("issued");
  const location = { lat: Number(value("lat")), lon: Number(value("lon")), district: value("district") };
  if (value("address")) location.address = value("address");
  const body = { authorization, location };
  if (value("name")) body.name = value("name");
  if (value("reason")) body.reason = value("reason");
  return body;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  said.hidden = true;
  if (!form.checkValidity()) {
    said.textContent = words.invalid;
    said.hidden = false;
    form.reportValidity();
    return;
  }
  const camera = form.dataset.camera;
  try {
    const adopted = await api(`/api/cameras/${encodeURIComponent(camera)}/adopt`, { method: "POST", body: adoption() });
    panel.hidden = true;
    toast(fill(words.adopted, { name: adopted.name }));
    await refresh();
  } catch (err) {
    said.textContent = fill(words.refused, { error: err.message });
    said.hidden = false;
  }
});
