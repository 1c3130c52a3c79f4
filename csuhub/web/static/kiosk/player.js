// One tile's live picture: fragmented MP4 from /api/live/{camera} played
// through Media Source Extensions (docs/live.md has the messages).
//
// A text "init" names the codec; the next binary frame is the init segment,
// then come whole fragments, the first at a keyframe. A new "init" (the
// camera came back) starts a new MediaSource: the old timeline is gone.
// Latency stays low by jumping to the live edge when more than MAX_LAG
// seconds behind, and the buffer is trimmed behind the playhead.

const MAX_LAG = 2.0; // seconds behind the newest frame before jumping ahead
const EDGE = 0.3; // where a jump lands, before the newest frame
const KEEP = 10; // seconds of played video kept in the buffer
const BACKOFF = [1, 2, 4, 8, 15]; // seconds between reconnections
const UNSUPPORTED = 4002; // the server's close code after "unsupported"
// The hub's "no": the camera may not film, or this screen may no longer see it
// (credential revoked, camera off the wall). Final: retrying would only be
// refused again; the wall's next change (wall.changed) replans the tile.
const REFUSED = 4003;
// Too many live sockets (1013 "try again later"; a refused handshake, 429,
// reaches a page as 1006 and retries on the normal backoff): retry slowly.
const BUSY = 1013;
const BUSY_WAIT = [20, 40, 60]; // seconds, plus up to 25% jitter

// Where a tile goes when the browser cannot play a stream's codec: the
// camera's sub-stream when the main one failed (often H.264 where the main is
// H.265) unless the hub said only a snapshot is left, else a snapshot tile.
// `said` is the hub's fallback ("sub" or "snapshot"), or null when the socket
// closed before the hub answered.
export function fallbackFor(stream, said) {
  return stream === "main" && said !== "snapshot" ? "sub" : "snapshot";
}

// Whether this browser can play an init message's stream.
export function playable(mime) {
  return Boolean(window.MediaSource && mime && MediaSource.isTypeSupported(mime));
}

export class Player {
  // onState(state, detail): "playing", "offline", "unsupported" (detail: fallbackFor's answer)
  constructor(video, camera, stream, onState) {
    this.video = video;
    this.camera = camera;
    this.stream = stream;
    this.onState = onState;
    this.ws = null;
    this.ms = null;
    this.sb = null;
    this.queue = [];
    this.attempt = 0;
    this.timer = null;
    this.closed = false;
    this.playing = false;
    this.refused = false; // we told the hub we cannot play its codec
    this.gaveUp = false;
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.addEventListener("error", () => this.restart());
  }

  start() {
    this.connect();
  }

  stop() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this.detach();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const camera = encodeURIComponent(this.camera);
    const ws = new WebSocket(`${scheme}//${location.host}/api/live/${camera}?stream=${this.stream}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onmessage = (e) => {
      if (this.ws !== ws) return;
      if (typeof e.data === "string") this.control(JSON.parse(e.data));
      else this.media(e.data);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws || this.closed) return;
      this.ws = null;
      if (e.code === UNSUPPORTED || this.refused) {
        this.unsupported(null); // closed before (or after) the hub's answer
        return;
      }
      if (e.code === REFUSED) {
        this.final(e.reason || "refused");
        return;
      }
      if (e.code === BUSY) {
        this.offline(e.reason || "busy");
        this.retrySlowly();
        return;
      }
      this.offline("connection");
      this.retry();
    };
  }

  // The hub refused this picture for good: say why, never reconnect.
  final(reason) {
    this.closed = true;
    clearTimeout(this.timer);
    this.detach();
    this.video.dataset.refused = reason;
    this.video.title = reason;
    this.offline(reason);
  }

  retrySlowly() {
    const base = BUSY_WAIT[Math.min(this.attempt, BUSY_WAIT.length - 1)];
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), base * (1 + Math.random() / 4) * 1000);
  }

  retry() {
    const wait = BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)];
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), wait * 1000);
  }

  restart() {
    // the decoder failed (a broken fragment): start over from a new init
    if (this.closed || !this.ws) return;
    const ws = this.ws;
    this.ws = null;
    ws.close(1000);
    this.detach();
    this.retry();
  }

  offline(reason) {
    this.playing = false;
    this.onState("offline", reason);
  }

  control(msg) {
    if (msg.type === "init") {
      if (!playable(msg.mime)) {
        // the hub answers with its fallback, then closes with 4002
        this.refused = true;
        this.detach();
        this.ws.send(JSON.stringify({ type: "unsupported", codec: msg.codec }));
        return;
      }
      this.attempt = 0;
      this.reset(msg.mime);
    } else if (msg.type === "offline") {
      this.offline(msg.reason);
    } else if (msg.type === "unsupported") {
      this.unsupported(msg.fallback || null);
    }
    // "online": the init that follows does the work
  }

  unsupported(said) {
    if (this.gaveUp) return;
    this.gaveUp = true;
    this.stop();
    this.onState("unsupported", fallbackFor(this.stream, said));
  }

  media(data) {
    if (!this.ms) return; // bytes before an init we could play
    this.queue.push(data);
    this.pump();
  }

  reset(mime) {
    this.detach();
    const ms = new MediaSource();
    this.ms = ms;
    this.video.src = URL.createObjectURL(ms);
    ms.addEventListener(
      "sourceopen",
      () => {
        if (this.ms !== ms) return;
        URL.revokeObjectURL(this.video.src);
        this.sb = ms.addSourceBuffer(mime);
        this.sb.addEventListener("updateend", () => this.updated());
        this.pump();
      },
      { once: true },
    );
  }

  detach() {
    this.playing = false;
    this.queue = [];
    this.sb = null;
    if (this.ms) {
      this.ms = null;
      this.video.removeAttribute("src");
      this.video.load();
    }
  }

  pump() {
    const sb = this.sb;
    if (!sb || sb.updating || this.queue.length === 0) return;
    try {
      sb.appendBuffer(this.queue.shift());
    } catch (err) {
      if (err.name === "QuotaExceededError") this.trim(true);
      else this.restart();
    }
  }

  updated() {
    this.chase();
    this.trim(false);
    this.pump();
  }

  chase() {
    const video = this.video;
    const ranges = video.buffered;
    if (ranges.length === 0) return;
    const start = ranges.start(0);
    const end = ranges.end(ranges.length - 1);
    if (video.currentTime < start || end - video.currentTime > MAX_LAG) {
      video.currentTime = Math.max(start, end - EDGE);
    }
    if (video.paused) video.play().catch(() => {});
    if (!this.playing) {
      this.playing = true;
      this.onState("playing");
    }
  }

  trim(hard) {
    const sb = this.sb;
    if (!sb || sb.updating || sb.buffered.length === 0) return;
    const played = this.video.currentTime - sb.buffered.start(0);
    if (hard || played > 2 * KEEP) {
      sb.remove(0, Math.max(0, this.video.currentTime - (hard ? 1 : KEEP)));
    }
  }
}
