// One camera's page: the live view (the kiosk's player over /api/live/{id}),
// the snapshot, the PTZ pad and presets, all through the hub's API, which
// checks the permission and the scope and audits each action.
import { api, el, fill, messages, toast } from "./panel.js";

const text = messages();

async function startLive(box) {
  const { Player } = await import(box.dataset.player);
  const video = document.getElementById("live-video");
  const status = document.getElementById("live-status");
  const show = (stream) => {
    const player = new Player(video, box.dataset.camera, stream, (state, detail) => {
      box.dataset.state = state;
      if (state === "playing") status.textContent = text.playing;
      else if (state === "unsupported" && detail === "sub" && stream === "main") show("sub");
      else if (state === "unsupported") status.textContent = text.unsupported;
      else status.textContent = fill(text.offline, { reason: detail || "" });
    });
    player.start();
    window.addEventListener("pagehide", () => player.stop(), { once: true });
  };
  show("main");
}

function snapshots(button, camera) {
  const image = document.getElementById("snapshot");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const path = `/api/cameras/${encodeURIComponent(camera)}/snapshot.jpg`;
      const blob = await (await api(path, { raw: true })).blob();
      if (image.src) URL.revokeObjectURL(image.src);
      image.src = URL.createObjectURL(blob);
      image.hidden = false;
    } catch (err) {
      toast(fill(text.failed, { reason: err.message }), "error");
    } finally {
      button.disabled = false;
    }
  });
}

function ptz(pad) {
  const path = `/api/cameras/${encodeURIComponent(pad.dataset.camera)}/ptz`;
  const send = async (body) => {
    try {
      const answer = await api(path, { method: "POST", body });
      return answer.result;
    } catch (err) {
      toast(fill(text.failed, { reason: err.message }), "error");
      return undefined;
    }
  };
  pad.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const { action, pan, tilt, zoom } = button.dataset;
    if (action) send({ action });
    else {
      send({
        action: "move",
        pan: Number(pan || 0),
        tilt: Number(tilt || 0),
        zoom: Number(zoom || 0),
        duration: 0.6,
      });
    }
  });
  const list = document.getElementById("presets");
  document.getElementById("presets-load").addEventListener("click", async () => {
    const presets = await send({ action: "presets" });
    if (presets === undefined) return;
    list.replaceChildren();
    if (!presets.length) list.append(el("li", { class: "muted", text: text.nopresets }));
    for (const preset of presets) {
      const name = preset.name || preset.token;
      const go = async () => {
        if ((await send({ action: "preset", preset: preset.token })) !== undefined) toast(text.done);
      };
      list.append(el("li", {}, el("button", {
        type: "button", class: "secondary", text: fill(text.goto, { name }), onclick: go,
      })));
    }
  });
}

const live = document.getElementById("live");
if (live) startLive(live);
const take = document.getElementById("snapshot-take");
if (take) snapshots(take, take.dataset.camera);
const pad = document.getElementById("ptz");
if (pad) ptz(pad);
