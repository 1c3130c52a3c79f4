// The playback page: nothing is played and no picture is loaded until the
// person has stated why (the reason form); then play.mp4 and frame.jpg are
// asked for with that ?reason=, which the hub audits with each view. A click
// on the timeline (or a "play from here") plays from that moment, across
// segment boundaries (play.mp4 joins the segments of its range).
import { api, el, fill, messages, toast, when } from "./panel.js";

const text = messages();
const timeline = document.getElementById("timeline");
const camera = timeline.dataset.camera;
const rangeFrom = Number(timeline.dataset.from);
const rangeTo = Number(timeline.dataset.to);
const width = Number(timeline.dataset.width);
const runs = JSON.parse(timeline.dataset.runs); // [[from, to], ...] recorded stretches
const maxPlay = Number(text.maxPlay) || 3600;
const WINDOW = Math.min(900, maxPlay); // seconds of footage one play.mp4 asks for
const THUMBS = 4;

const player = document.getElementById("player");
const playhead = document.getElementById("playhead");
const nowShowing = document.getElementById("now-showing");
let reason = null; // the stated reason: null until the form is sent
let playing = null; // { from, to, pieces: [[from, to], ...] } of the current play.mp4

// panel.js's when() asks for dateStyle with timeZoneName, which Intl refuses
// (a TypeError in Chromium): the same fields, spelled out
const FIELDS = {
  dateStyle: undefined, timeStyle: undefined, day: "numeric", month: "short", year: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
};
const at = (moment) => when(moment, FIELDS);

// The recorded pieces of [from, to): what play.mp4 joins, in order, without the gaps.
function piecesOf(from, to) {
  return runs
    .map(([a, b]) => [Math.max(a, from), Math.min(b, to)])
    .filter(([a, b]) => b > a);
}

// The wall-clock moment shown at the player's currentTime (gaps are skipped by
// the join, so the video's clock and the wall's part at each gap).
function wallTime(offset) {
  if (!playing) return null;
  let left = offset;
  for (const [a, b] of playing.pieces) {
    if (left <= b - a) return a + left;
    left -= b - a;
  }
  const last = playing.pieces[playing.pieces.length - 1];
  return last ? last[1] : null;
}

function mediaUrl(path, params) {
  const query = new URLSearchParams({ ...params, reason });
  return `/api/recordings/${encodeURIComponent(camera)}/${path}?${query}`;
}

// Play from moment t (epoch seconds): the next recorded stretch at or after it.
function playFrom(t) {
  if (reason === null) {
    askReason();
    return;
  }
  const run = runs.find(([, b]) => b > t);
  if (!run) {
    toast(text.noFootage, "error");
    return;
  }
  const from = Math.max(t, run[0]);
  const to = Math.min(from + WINDOW, rangeTo);
  const pieces = piecesOf(from, to);
  if (!pieces.length) {
    toast(text.noFootage, "error");
    return;
  }
  playing = { from, to, pieces };
  player.src = mediaUrl("play.mp4", { from: from.toFixed(3), to: to.toFixed(3) });
  player.play().catch(() => {}); // autoplay may be refused: the controls remain
  showTime();
}

function showTime() {
  const moment = wallTime(player.currentTime || 0);
  if (moment === null) return;
  nowShowing.textContent = at(moment);
  nowShowing.dataset.t = moment.toFixed(3);
  const x = ((moment - rangeFrom) / (rangeTo - rangeFrom)) * width;
  playhead.setAttribute("x1", x.toFixed(2));
  playhead.setAttribute("x2", x.toFixed(2));
}

function askReason() {
  const error = document.getElementById("reason-error");
  error.textContent = text.reasonNeeded;
  error.hidden = false;
  document.getElementById("reason").focus();
}

// A few pictures spread over the recorded time, each a way in.
function thumbnails() {
  const box = document.getElementById("thumbs");
  box.replaceChildren();
  const total = runs.reduce((sum, [a, b]) => sum + (b - a), 0);
  if (!total) return;
  for (let k = 0; k < THUMBS; k += 1) {
    let left = ((k + 0.5) / THUMBS) * total;
    let moment = null;
    for (const [a, b] of runs) {
      if (left <= b - a) { moment = a + left; break; }
      left -= b - a;
    }
    if (moment === null) continue;
    const label = fill(text.thumbnail, { time: at(moment) });
    const image = el("img", { src: mediaUrl("frame.jpg", { t: moment.toFixed(3) }), alt: label, loading: "lazy" });
    box.append(el("button", { type: "button", class: "thumb", title: label, onclick: () => playFrom(moment) }, image));
  }
}

document.getElementById("reason-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const given = document.getElementById("reason").value.trim();
  if (!given) {
    askReason();
    return;
  }
  reason = given;
  document.getElementById("reason-error").hidden = true;
  document.getElementById("stated").textContent = reason;
  document.getElementById("reason-card").hidden = true;
  document.getElementById("player-card").hidden = false;
  const exportReason = document.getElementById("export-reason");
  if (exportReason && !exportReason.value) exportReason.value = reason;
  thumbnails();
  playFrom(runs.length ? runs[0][0] : rangeFrom);
});

timeline.addEventListener("click", (event) => {
  const box = timeline.getBoundingClientRect();
  const fraction = (event.clientX - box.left) / box.width;
  playFrom(rangeFrom + fraction * (rangeTo - rangeFrom));
});
for (const button of document.querySelectorAll("button.seek")) {
  button.addEventListener("click", () => playFrom(Number(button.dataset.t)));
}
player.addEventListener("timeupdate", showTime);
player.addEventListener("error", () => {
  if (player.getAttribute("src")) toast(text.playFailed, "error");
});

// -- export: POST /api/exports answers the signed package itself -----------------

const exportForm = document.getElementById("export-form");
if (exportForm) {
  exportForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const done = document.getElementById("export-done");
    const error = document.getElementById("export-error");
    const button = exportForm.querySelector("button[type=submit]");
    done.hidden = true;
    error.hidden = true;
    button.disabled = true;
    toast(text.exporting);
    try {
      const response = await api("/api/exports", {
        method: "POST",
        raw: true,
        body: {
          camera,
          from: document.getElementById("export-from").value.trim(),
          to: document.getElementById("export-to").value.trim(),
          reason: document.getElementById("export-reason").value.trim(),
        },
      });
      const disposition = response.headers.get("Content-Disposition") || "";
      const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || "export.zip";
      const signer = response.headers.get("X-Csuhub-Signer") || "";
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", { href: url, download: name, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      done.textContent = fill(text.exported, { name, signer });
      done.dataset.signer = signer;
      done.hidden = false;
    } catch (err) {
      error.textContent = `${text.exportFailed} ${err.message}`;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
}
