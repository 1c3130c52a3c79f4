// A wall's screen, full-window (docs/kiosk.md): the tiles of GET /api/walls/{wall},
// placed by their fractions, fetched again whenever /api/events says the wall
// (or a camera's state) changed. The tiles themselves are screen.js's (shared
// with the panel's wall page); this page adds the status line, the session's
// keep-alive and its end.

import { Player } from "./player.js";
import { ScreenView } from "./screen.js";

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
const EVENTS = "wall.changed,camera_state_changed";

const { wall, screen, lang, ping: pingEvery } = document.body.dataset;
const words = LABELS[lang] || LABELS.fr;
const root = document.getElementById("screen");
const statusLine = document.getElementById("status");
const view = new ScreenView(root, { Player, words, sessionEnded });
let csrf = document.body.dataset.csrf;
let ended = false;
let events = null; // the /api/events WebSocket

function say(text) {
  statusLine.textContent = text || "";
  statusLine.hidden = !text;
}

function render(state) {
  if (ended) return;
  const shown = state.screens.find((s) => s.id === screen);
  if (!shown) {
    say(words.noscreen);
    return;
  }
  say(null);
  view.show(shown.tiles);
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
  view.clear();
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
