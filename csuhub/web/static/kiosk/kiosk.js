// A wall's screen, full-window (docs/kiosk.md): the tiles of GET /api/walls/{wall},
// placed by their fractions, fetched again whenever /api/events says the wall
// (or a camera's state) changed. Live tiles play through player.js; carousels
// cycle on this page; tiles whose codec the browser cannot play show a
// snapshot refreshed every SNAPSHOT_EVERY seconds.

import { Player } from "./player.js";

const LABELS = {
  fr: {
    offline: "hors ligne",
    connection: "reconnexion…",
    unsupported: "codec non pris en charge",
    nocamera: "aucune caméra",
    snapshot: "image indisponible",
    session: "session terminée : reconnecter l'écran (/wall/login)",
    lost: "hub injoignable",
    noscreen: "écran inconnu",
  },
  en: {
    offline: "offline",
    connection: "reconnecting…",
    unsupported: "codec not supported",
    nocamera: "no camera",
    snapshot: "no picture",
    session: "session ended: log the screen in again (/wall/login)",
    lost: "hub unreachable",
    noscreen: "unknown screen",
  },
};
const SNAPSHOT_EVERY = 10; // seconds (each snapshot is an audited consultation)
const EVENTS = "wall.changed,camera_state_changed";

const { wall, screen, lang, ping: pingEvery } = document.body.dataset;
const words = LABELS[lang] || LABELS.fr;
const root = document.getElementById("screen");
const statusLine = document.getElementById("status");
const tiles = new Map(); // key -> Tile
let csrf = document.body.dataset.csrf;
let ended = false;

function say(text) {
  statusLine.textContent = text || "";
  statusLine.hidden = !text;
}

function el(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

// One tile: its box, what plays in it, a label over it ("hors ligne").
class Tile {
  constructor(spec) {
    this.spec = spec;
    this.box = el("div", "tile");
    this.media = el("div", "media");
    this.name = el("div", "name");
    this.label = el("div", "label");
    this.label.hidden = true;
    this.box.append(this.media, this.name, this.label);
    this.stopContent = () => {};
    this.timer = null;
    if (spec.source.kind === "incident") this.box.classList.add("incident");
    this.begin();
  }

  place(spec) {
    const style = this.box.style;
    style.left = `${spec.x * 100}%`;
    style.top = `${spec.y * 100}%`;
    style.width = `${spec.w * 100}%`;
    style.height = `${spec.h * 100}%`;
  }

  show(text, state) {
    this.label.textContent = text || "";
    this.label.hidden = !text;
    this.box.dataset.state = state;
  }

  begin() {
    const spec = this.spec;
    const cameras = spec.source.cameras || [];
    if (spec.source.kind === "carousel" && spec.playable && cameras.length) {
      let at = 0;
      this.live(cameras[0], spec.stream);
      const dwell = Math.max(1, spec.source.dwell || 10);
      this.timer = setInterval(() => {
        at = (at + 1) % cameras.length;
        this.live(cameras[at], spec.stream);
      }, dwell * 1000);
    } else if (spec.camera && spec.playable) {
      this.live(spec.camera, spec.stream);
    } else if (spec.camera && spec.reason === "h265") {
      this.snapshot(spec.camera);
    } else if (spec.camera && spec.reason === "offline") {
      this.box.dataset.camera = spec.camera;
      this.name.textContent = spec.camera;
      this.show(words.offline, "offline");
    } else {
      this.box.classList.add("empty");
      const none = spec.source.kind !== "empty" && spec.reason === "no_camera";
      this.show(none ? words.nocamera : null, "empty");
    }
  }

  live(camera, stream) {
    this.stopContent();
    const video = el("video");
    this.media.replaceChildren(video);
    this.box.dataset.camera = camera;
    this.name.textContent = camera;
    this.show(null, "starting");
    const player = new Player(video, camera, stream, (state, detail) => {
      if (state === "playing") this.show(null, "playing");
      else if (state === "offline") {
        this.show(detail === "connection" ? words.connection : words.offline, "offline");
      }
      else if (state === "unsupported") {
        player.stop();
        this.snapshot(camera);
      }
    });
    this.stopContent = () => player.stop();
    player.start();
  }

  snapshot(camera) {
    this.stopContent();
    const img = el("img");
    img.alt = camera;
    this.media.replaceChildren(img);
    this.box.dataset.camera = camera;
    this.name.textContent = camera;
    let url = null;
    let live = true;
    const refresh = async () => {
      if (!live) return;
      try {
        const answer = await fetch(`/api/cameras/${encodeURIComponent(camera)}/snapshot.jpg`, {
          cache: "no-store",
          credentials: "same-origin",
        });
        if (!answer.ok) throw new Error(String(answer.status));
        const next = URL.createObjectURL(await answer.blob());
        img.src = next;
        if (url) URL.revokeObjectURL(url);
        url = next;
        this.show(null, "snapshot");
      } catch {
        this.show(words.snapshot, "offline");
      }
      if (live) shot = setTimeout(refresh, SNAPSHOT_EVERY * 1000);
    };
    let shot = setTimeout(refresh, 0);
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

function keyOf(spec, index) {
  const source = spec.source;
  return [
    index,
    source.kind,
    spec.camera,
    spec.stream,
    spec.playable,
    spec.reason || "",
    (source.cameras || []).join(","),
    source.dwell || "",
  ].join("|");
}

function render(state) {
  const shown = state.screens.find((s) => s.id === screen);
  if (!shown) {
    say(words.noscreen);
    return;
  }
  say(null);
  const seen = new Set();
  shown.tiles.forEach((spec, index) => {
    const key = keyOf(spec, index);
    seen.add(key);
    let tile = tiles.get(key);
    if (!tile) {
      tile = new Tile(spec);
      tiles.set(key, tile);
      root.append(tile.box);
    }
    tile.place(spec);
  });
  for (const [key, tile] of tiles) {
    if (!seen.has(key)) {
      tile.destroy();
      tiles.delete(key);
    }
  }
  root.dataset.version = String(state.version);
  root.dataset.layout = shown.layout;
  root.dataset.incident = shown.incident === null ? "" : String(shown.incident);
}

let fetching = null;
let again = false;

async function refresh() {
  if (fetching) {
    again = true; // one more fetch once this one is done: the newest state wins
    return;
  }
  fetching = (async () => {
    do {
      again = false;
      try {
        const answer = await fetch(`/api/walls/${encodeURIComponent(wall)}`, {
          cache: "no-store",
          credentials: "same-origin",
        });
        if (answer.status === 401) return sessionEnded();
        if (!answer.ok) throw new Error(String(answer.status));
        render(await answer.json());
      } catch {
        say(words.lost);
      }
    } while (again);
  })();
  await fetching;
  fetching = null;
}

function sessionEnded() {
  ended = true;
  say(words.session);
}

let eventsAttempt = 0;

function subscribe() {
  if (ended) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/api/events?events=${EVENTS}`);
  ws.onmessage = (e) => {
    const event = JSON.parse(e.data);
    if (event.event === "hello") {
      eventsAttempt = 0;
      refresh(); // whatever changed while we were away
    } else if (event.event === "wall.changed" && event.wall !== wall) {
      // another wall
    } else if (event.event !== "lag" || event.dropped > 0) {
      refresh();
    }
  };
  ws.onclose = () => {
    const wait = Math.min(15, 2 ** eventsAttempt);
    eventsAttempt += 1;
    setTimeout(subscribe, wait * 1000);
  };
}

async function keepAlive() {
  if (!csrf || ended) return;
  let wait = 10;
  try {
    const answer = await fetch("/wall/session", {
      method: "POST",
      headers: { "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
    if (answer.status === 401 || answer.status === 403) return sessionEnded();
    if (answer.ok) {
      const said = await answer.json();
      csrf = said.csrf_token;
      wait = said.ping;
    }
  } catch {
    // the hub is away: try again soon
  }
  setTimeout(keepAlive, wait * 1000);
}

refresh();
subscribe();
setTimeout(keepAlive, Number(pingEvery || 60) * 1000);
