// One wall screen's tiles, shared by the kiosk page (kiosk.js) and the panel's
// wall page (panel/static/wall.js): each tile placed by its fractions, playing
// live through player.js, cycling a carousel, or showing a JPEG refreshed every
// few seconds (snapshot tiles, and tiles whose codec the browser cannot play
// once the sub-stream failed too). The two pages differ in what is around the
// screen (a status line, the editor), not in how a tile behaves.

const SNAPSHOT_EVERY = 10; // seconds (each snapshot is an audited consultation)
const MIN_REFRESH = 1; // seconds: the fastest a snapshot tile asks

function el(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

// What a tile's spec asks it to run: a change of plan restarts its content, a
// change of anything else (a reason, a label, its place) is applied in place.
export function planOf(spec, current) {
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

// A tile is the same tile while its place, kind, camera(s) and stream stay: a
// camera going offline and back (playable, reason) changes its label, not its
// player.
export function keyOf(spec, index) {
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

// One tile: its box, what plays in it, a label over it ("hors ligne").
// `page`: { Player, words: {offline, connection, nocamera, snapshot},
// sessionEnded(): called when a snapshot is refused with 401 }.
export class Tile {
  constructor(spec, index, page) {
    this.page = page;
    this.box = el("div", "tile");
    this.box.dataset.index = String(index);
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
    const words = this.page.words;
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
    const words = this.page.words;
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
    const words = this.page.words;
    const video = el("video");
    video.muted = true;
    this.media.replaceChildren(video);
    this.box.dataset.camera = camera;
    this.box.dataset.stream = stream;
    this.name.textContent = camera;
    const tell = (state, text) => {
      this.said = [state, text];
      this.relabel();
    };
    tell("starting", null);
    const player = new this.page.Player(video, camera, stream, (state, detail) => {
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
    const words = this.page.words;
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
        if (answer.status === 401 && this.page.sessionEnded) return this.page.sessionEnded();
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

// The tiles of one screen in `root`: `show(tiles)` reconciles them with a new
// state of the screen (kept tiles update in place, new ones start, gone ones
// stop); `clear()` stops them all.
export class ScreenView {
  constructor(root, page) {
    this.root = root;
    this.page = page;
    this.tiles = new Map(); // key -> Tile
  }

  show(specs) {
    const seen = new Set();
    specs.forEach((spec, index) => {
      const key = keyOf(spec, index);
      seen.add(key);
      const tile = this.tiles.get(key);
      if (tile) {
        tile.update(spec);
      } else {
        const made = new Tile(spec, index, this.page);
        this.tiles.set(key, made);
        this.root.append(made.box);
      }
    });
    for (const [key, tile] of this.tiles) {
      if (!seen.has(key)) {
        tile.destroy();
        this.tiles.delete(key);
      }
    }
  }

  clear() {
    for (const tile of this.tiles.values()) tile.destroy();
    this.tiles.clear();
    this.root.replaceChildren();
  }
}
