// The panel's wall page: the chosen screen's tiles, the kiosk's own (screen.js
// and player.js, imported from /static/kiosk/<version>/), fetched again whenever
// /api/events says the wall or a camera changed; and, for wall.edit, the
// editor's forms (layout and cameras, push, pin) posting to the walls API.
// Words come from the page's <template id="messages">.

import { api, listen, messages, swap, toast } from "./panel.js";

const words = messages();
const root = document.getElementById("screen");
function el(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
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
  // screen.js sits beside player.js, in the kiosk's versioned folder
  const player = new URL(root.dataset.player, location.href);
  const [{ Player }, { ScreenView }] = await Promise.all([
    import(player.href),
    import(new URL("screen.js", player).href),
  ]);
  const wall = root.dataset.wall;
  const screenId = root.dataset.screen;
  const view = new ScreenView(root, { Player, words });

  const render = (state) => {
    const screen = state.screens.find((s) => s.id === screenId);
    if (!screen) return;
    view.show(screen.tiles);
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
