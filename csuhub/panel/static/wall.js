// The panel's wall page: the chosen screen's tiles, playing live through the
// kiosk's own player.js (imported from /static/kiosk/<version>/), placed by their
// fractions and fetched again whenever /api/events says the wall or a camera
// changed; and, for wall.edit, the editor's forms (layout and cameras, push, pin)
// posting to the walls API. Words come from the page's <template id="messages">.

import { api, listen, messages, toast } from "./panel.js";
import { swap } from "./incidents-page.js";

const words = messages();
const root = document.getElementById("screen");
const SNAPSHOT_EVERY = 10; // seconds, for a tile that cannot play its codec

function el(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

// What a tile runs: the kiosk's plan (kiosk.js planOf), without its carousel clock
// being a reason to restart the tile on each change of the wall.
function planOf(spec) {
  const source = spec.source;
  if (source.kind === "carousel") return spec.playable && (source.cameras || []).length ? "carousel" : "empty";
  if (!spec.camera) return "empty";
  if (source.kind === "snapshot") return "snapshot";
  if (spec.playable) return "live";
  if (spec.reason === "h265") return spec.stream === "main" ? "live-sub" : "snapshot";
  if (spec.reason === "offline") return "offline";
  return "empty";
}

class Tile {
  constructor(spec, Player, index) {
    this.Player = Player;
    this.box = el("div", "tile");
    this.box.dataset.index = String(index);
    this.media = el("div", "media");
    this.name = el("div", "name");
    this.label = el("div", "label");
    this.label.hidden = true;
    this.box.append(this.media, this.name, this.label);
    this.stopContent = () => {};
    this.timer = null;
    if (spec.source.kind === "incident") this.box.classList.add("incident");
    this.spec = spec;
    this.place(spec);
    this.begin(planOf(spec));
  }

  place(spec) {
    const style = this.box.style;
    style.left = `${spec.x * 100}%`;
    style.top = `${spec.y * 100}%`;
    style.width = `${spec.w * 100}%`;
    style.height = `${spec.h * 100}%`;
  }

  say(text, state) {
    this.label.textContent = text || "";
    this.label.hidden = !text;
    this.box.dataset.state = state;
  }

  begin(plan) {
    const spec = this.spec;
    this.box.classList.toggle("empty", plan === "empty");
    if (plan === "carousel") {
      const cameras = spec.source.cameras;
      let at = 0;
      this.live(cameras[0], spec.stream);
      const dwell = Math.max(1, spec.source.dwell || 10);
      this.timer = setInterval(() => {
        at = (at + 1) % cameras.length;
        this.live(cameras[at], spec.stream);
      }, dwell * 1000);
    } else if (plan === "live" || plan === "live-sub") {
      this.live(spec.camera, plan === "live" ? spec.stream : "sub");
    } else if (plan === "snapshot") {
      this.snapshot(spec.camera, spec.source.kind === "snapshot" ? spec.source.refresh : SNAPSHOT_EVERY);
    } else if (plan === "offline") {
      this.name.textContent = spec.camera;
      this.box.dataset.camera = spec.camera;
      this.say(words.offline, "offline");
    } else {
      this.say(spec.source.kind !== "empty" && spec.reason === "no_camera" ? words.nocamera : null, "empty");
    }
  }

  live(camera, stream) {
    this.stopContent();
    const video = el("video");
    video.muted = true;
    this.media.replaceChildren(video);
    this.box.dataset.camera = camera;
    this.name.textContent = camera;
    this.say(null, "starting");
    const player = new this.Player(video, camera, stream, (state, detail) => {
      if (state === "playing") this.say(null, "playing");
      else if (state === "offline") this.say(detail === "connection" ? words.connection : words.offline, "offline");
      else if (state === "unsupported") {
        if (detail === "sub") this.live(camera, "sub");
        else this.snapshot(camera, SNAPSHOT_EVERY);
      }
    });
    this.stopContent = () => player.stop();
    player.start();
  }

  // A JPEG every `every` seconds (each fetch is an audited consultation), one at
  // a time, a fresh address each time so no cache answers it.
  snapshot(camera, every) {
    this.stopContent();
    const img = el("img");
    img.alt = camera;
    this.media.replaceChildren(img);
    this.box.dataset.camera = camera;
    this.name.textContent = camera;
    const wait = Math.max(1, Number(every) || SNAPSHOT_EVERY) * 1000;
    let live = true;
    let url = null;
    let shot = null;
    const refresh = async () => {
      try {
        const answer = await fetch(`/api/cameras/${encodeURIComponent(camera)}/snapshot.jpg?t=${Date.now()}`, {
          cache: "no-store", credentials: "same-origin",
        });
        if (!answer.ok) throw new Error(answer.status === 409 ? words.snapshot : words.offline);
        const blob = await answer.blob();
        if (!live) return;
        const next = URL.createObjectURL(blob);
        img.src = next;
        if (url) URL.revokeObjectURL(url);
        url = next;
        this.say(null, "snapshot");
      } catch (err) {
        if (live) this.say(err.message, "offline");
      }
      if (live) shot = setTimeout(refresh, wait);
    };
    shot = setTimeout(refresh, 0);
    this.stopContent = () => {
      live = false;
      clearTimeout(shot);
      if (url) URL.revokeObjectURL(url);
    };
  }

  destroy() {
    clearInterval(this.timer);
    this.stopContent();
    this.box.remove();
  }
}

// The same tile while its place, kind, camera(s) and stream stay the same.
function keyOf(spec, index) {
  const s = spec.source;
  return [index, s.kind, spec.camera, spec.stream, spec.playable, spec.reason || "",
    (s.cameras || []).join(","), s.dwell || "", s.refresh || ""].join("|");
}

function showState(screen) {
  document.getElementById("screen-layout").textContent = screen.layout;
  document.getElementById("pin-state").hidden = !screen.pinned;
  document.getElementById("incident-state").hidden = !screen.incident;
  document.getElementById("incident-id").textContent = screen.incident ?? "";
  const pin = document.getElementById("pin");
  if (pin) {
    pin.dataset.pinned = String(screen.pinned);
    pin.textContent = screen.pinned ? words.unpin : words.pin;
  }
  const tiles = document.getElementById("push-tile");
  if (tiles) {
    const chosen = tiles.value;
    const first = tiles.options[0];
    tiles.replaceChildren(first);
    screen.tiles.forEach((tile, index) => {
      const option = el("option");
      option.value = String(index);
      option.textContent = words.tile.replace("{n}", String(index + 1)) + (tile.camera ? ` (${tile.camera})` : "");
      tiles.append(option);
    });
    tiles.value = chosen;
  }
}

async function start() {
  if (!root) return;
  const { Player } = await import(root.dataset.player);
  const wall = root.dataset.wall;
  const screenId = root.dataset.screen;
  const tiles = new Map();

  const render = (state) => {
    const screen = state.screens.find((s) => s.id === screenId);
    if (!screen) return;
    const seen = new Set();
    screen.tiles.forEach((spec, index) => {
      const key = keyOf(spec, index);
      seen.add(key);
      if (!tiles.has(key)) {
        const tile = new Tile(spec, Player, index);
        tiles.set(key, tile);
        root.append(tile.box);
      }
    });
    for (const [key, tile] of tiles) {
      if (!seen.has(key)) {
        tile.destroy();
        tiles.delete(key);
      }
    }
    root.dataset.version = String(state.version);
    root.dataset.layout = screen.layout;
    root.dataset.pinned = String(screen.pinned);
    showState(screen);
  };

  let busy = null;
  let again = false;
  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = (async () => {
      do {
        again = false;
        try {
          render(await api(`/api/walls/${encodeURIComponent(wall)}`));
        } catch {
          toast(words.lost, "error");
        }
      } while (again);
    })();
    await busy;
    busy = null;
  };

  listen(["wall.changed", "camera_state_changed"], (event) => {
    if (event.event === "wall.changed") swap(["walls-list"]).catch(() => {}); // pins, spotlights
    if (event.event === "wall.changed" && event.wall !== wall) return;
    refresh();
  });
  await refresh();
  editor(wall, screenId, render);
}

function editor(wall, screenId, render) {
  const path = `/api/walls/${encodeURIComponent(wall)}/screens/${encodeURIComponent(screenId)}`;
  const refused = (err) => toast(`${words.failed} ${err.message}`, "error");
  const layoutForm = document.getElementById("layout-form");
  if (!layoutForm) return;
  layoutForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const cameras = layoutForm.sources.value.split(",").map((c) => c.trim()).filter(Boolean);
    try {
      render(await api(path, { method: "POST", body: { layout: layoutForm.layout.value, cameras } }));
      toast(words.saved);
    } catch (err) { refused(err); }
  });
  const pushForm = document.getElementById("push-form");
  pushForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { camera: pushForm.camera.value, screen: screenId };
    if (pushForm.tile.value !== "") body.tile = Number(pushForm.tile.value);
    try {
      const answer = await api(`/api/walls/${encodeURIComponent(wall)}/push`, { method: "POST", body });
      render(answer.wall);
      toast(words.pushed);
    } catch (err) { refused(err); }
  });
  const pin = document.getElementById("pin");
  pin.addEventListener("click", async () => {
    const pinned = pin.dataset.pinned !== "true";
    try {
      render(await api(path, { method: "POST", body: { pinned } }));
      toast(pinned ? words.pinned : words.unpinned);
    } catch (err) { refused(err); }
  });
}

start();
