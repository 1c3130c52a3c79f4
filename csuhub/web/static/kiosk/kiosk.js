// A wall's screen, full-window (docs/kiosk.md): the tiles of GET /api/walls/{wall},
// placed by their fractions, fetched again whenever /api/events says the wall
// (or a camera's state) changed. Live tiles play through player.js; carousels
// cycle on this page; snapshot tiles (and tiles whose codec the browser cannot
// play, once the sub-stream failed too) show a JPEG refreshed every few seconds.

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
const MIN_REFRESH = 1; // seconds: the fastest a snapshot tile asks
const EVENTS = "wall.changed,camera_state_changed";

const { wall, screen, lang, ping: pingEvery } = document.body.dataset;
const words = LABELS[lang] || LABELS.fr;
const root = document.getElementById("screen");
const statusLine = document.getElementById("status");
const tiles = new Map(); // key -> Tile
let csrf = document.body.dataset.csrf;
let ended = false;
let events = null; // the /api/events WebSocket

function say(text) {
  statusLine.textContent = text || "";
  statusLine.hidden = !text;
}

function el(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

// What a tile's spec asks it to run: a change of plan restarts its content, a
// change of anything else (a reason, a label, its place) is applied in place.
function planOf(spec, current) {
  const source = spec.source;
  const cameras = source.cameras || [];
  if (source.kind === "carousel") return spec.playable && cameras.length ? "carousel" : "empty";
  if (!spec.camera) return "empty";
  if (source.kind === "snapshot") return "snapshot";
  if (spec.playable) return "live";
  if (spec.reason === "h265") return spec.stream === "main" ? "live-sub" : "snapshot";
  if (spec.reason === "offline") {
    // a playing tile keeps its player: it says offline/online itself
    return current === "live" || current === "live-sub" ? current : "offline";
  }
  return "empty";
}

// One tile: its box, what plays in it, a label over it ("hors ligne").
class Tile {
  constructor(spec) {
    this.box = el("div", "tile");
    this.media = el("div", "media");
    this.name = el("div", "name");
    this.label = el("div", "label");
    this.label.hidden = true;
    this.box.append(this.media, this.name, this.label);
    this.stopContent = () => {};
    this.timer = null;
    this.plan = null;
    this.said = null; // what the player last said: [state, text]
    if (spec.source.kind === "incident") this.box.classList.add("incident");
    this.update(spec);
  }

  update(spec) {
    this.spec = spec;
    this.place(spec);
    const plan = planOf(spec, this.plan);
    if (plan !== this.plan) {
      this.stop();
      this.plan = plan;
      this.begin(plan);
    }
    this.relabel();
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

  // The label from the player's word and the wall's: the player's offline (the
  // stream dropped) first, then the hub's (the register says offline).
  relabel() {
    if (this.said && this.said[0] !== "playing" && this.said[0] !== "starting") {
      this.show(this.said[1], this.said[0]);
    } else if (this.spec.reason === "offline" && this.spec.camera) {
      this.show(words.offline, "offline");
    } else if (this.said) {
      this.show(null, this.said[0]);
    }
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
    } else if (plan === "live") {
      this.live(spec.camera, spec.stream);
    } else if (plan === "live-sub") {
      this.live(spec.camera, "sub");
    } else if (plan === "snapshot") {
      const every = spec.source.kind === "snapshot" ? spec.source.refresh : SNAPSHOT_EVERY;
      this.snapshot(spec.camera, every);
    } else if (plan === "offline") {
      this.media.replaceChildren();
      this.box.dataset.camera = spec.camera;
      this.name.textContent = spec.camera;
      this.said = ["offline", words.offline];
    } else {
      this.media.replaceChildren();
      delete this.box.dataset.camera;
      this.name.textContent = "";
      const none = spec.source.kind !== "empty" && spec.reason === "no_camera";
      this.said = ["empty", none ? words.nocamera : null];
    }
  }

  live(camera, stream) {
    this.stopContent();
    const video = el("video");
    this.media.replaceChildren(video);
    this.box.dataset.camera = camera;
    this.box.dataset.stream = stream;
    this.name.textContent = camera;
    const tell = (state, text) => {
      this.said = [state, text];
      this.relabel();
    };
    tell("starting", null);
    const player = new Player(video, camera, stream, (state, detail) => {
      if (state === "playing") tell("playing", null);
      else if (state === "offline") {
        tell("offline", detail === "connection" ? words.connection : words.offline);
      } else if (state === "unsupported") {
        // detail is fallbackFor's answer: the sub-stream, else a snapshot
        if (detail === "sub") this.live(camera, "sub");
        else this.snapshot(camera, SNAPSHOT_EVERY);
      }
    });
    this.stopContent = () => player.stop();
    player.start();
  }

  // A JPEG every `every` seconds: one request at a time (the next is asked for
  // once the last is in), a fresh URL each time so no cache answers for it.
  snapshot(camera, every) {
    this.stopContent();
    const img = el("img");
    img.alt = camera;
    this.media.replaceChildren(img);
    this.box.dataset.camera = camera;
    delete this.box.dataset.stream;
    this.name.textContent = camera;
    const wait = Math.max(MIN_REFRESH, Number(every) || SNAPSHOT_EVERY) * 1000;
    const address = `/api/cameras/${encodeURIComponent(camera)}/snapshot.jpg`;
    let url = null;
    let live = true;
    let shot = null;
    let count = 0;
    const refresh = async () => {
      if (!live) return;
      count += 1;
      try {
        const answer = await fetch(`${address}?t=${Date.now()}-${count}`, {
          cache: "no-store",
          credentials: "same-origin",
        });
        if (answer.status === 401) return sessionEnded();
        if (answer.status === 409) throw new Error(words.snapshot); // a driver without
        if (!answer.ok) throw new Error(words.offline);
        const blob = await answer.blob();
        if (!live) return;
        const next = URL.createObjectURL(blob);
        img.src = next;
        if (url) URL.revokeObjectURL(url);
        url = next;
        this.said = ["snapshot", null];
      } catch (err) {
        if (!live) return;
        // the camera failed (or the hub is away): offline until a picture comes
        this.said = ["offline", err.message === words.snapshot ? words.snapshot : words.offline];
      }
      this.box.dataset.shots = String(count);
      this.relabel();
      if (live) shot = setTimeout(refresh, wait);
    };
    this.said = ["starting", null];
    shot = setTimeout(refresh, 0);
    this.stopContent = () => {
      live = false;
      clearTimeout(shot);
      if (url) URL.revokeObjectURL(url);
    };
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.stopContent();
    this.stopContent = () => {};
    this.said = null;
  }

  destroy() {
    this.stop();
    this.box.remove();
  }
}

// A tile is the same tile while its place, kind, camera(s) and stream stay: a
// camera going offline and back (playable, reason) changes its label, not its
// player.
function keyOf(spec, index) {
  const source = spec.source;
  return [
    index,
    source.kind,
    spec.camera,
    spec.stream,
    (source.cameras || []).join(","),
    source.dwell || "",
    source.refresh || "",
  ].join("|");
}

function render(state) {
  if (ended) return;
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
    const tile = tiles.get(key);
    if (tile) {
      tile.update(spec);
    } else {
      const made = new Tile(spec);
      tiles.set(key, made);
      root.append(made.box);
    }
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
  if (ended) return;
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
        if (!ended) say(words.lost);
      }
    } while (again && !ended);
  })();
  await fetching;
  fetching = null;
}

// The session is over (the account disabled, the token revoked, too long
// away): nothing may keep playing on a screen nobody is allowed to watch.
// Every player and socket stops, the tiles go, and the screen says why.
function sessionEnded() {
  if (ended) return;
  ended = true;
  for (const tile of tiles.values()) tile.destroy();
  tiles.clear();
  root.replaceChildren();
  if (events) {
    const ws = events;
    events = null;
    ws.close(1000);
  }
  document.body.classList.add("ended");
  root.dataset.ended = "true";
  say(words.session);
}

let eventsAttempt = 0;

function subscribe() {
  if (ended) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/api/events?events=${EVENTS}`);
  events = ws;
  ws.onmessage = (e) => {
    if (events !== ws) return;
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
    if (events !== ws || ended) return;
    events = null;
    const wait = Math.min(15, 2 ** eventsAttempt);
    eventsAttempt += 1;
    setTimeout(subscribe, wait * 1000);
    refresh(); // a closed socket may be an ended session: the fetch says so
  };
}

async function keepAlive() {
  if (!csrf || ended) return;
  let wait = Number(pingEvery || 60);
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
    wait = Math.min(wait, 10); // the hub is away: try again soon
  }
  setTimeout(keepAlive, wait * 1000);
}

refresh();
subscribe();
setTimeout(keepAlive, Number(pingEvery || 60) * 1000);
