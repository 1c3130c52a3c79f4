// The drawing page: clicks on the SVG over the camera's picture place the
// points of a polygon, kept in 0..1 coordinates (origin top left); the list
// names and deletes them; "save" replaces the drawn masks through
// PUT /api/cameras/{id}/masks. The site file's masks are shown, not editable.
import { api, messages, toast } from "./panel.js";

const words = messages();
const SVG = "http://www.w3.org/2000/svg";
const canvas = document.getElementById("canvas");
const width = Number(canvas.dataset.width);
const height = Number(canvas.dataset.height);
const camera = canvas.dataset.camera;
const maxMasks = Number(canvas.dataset.maxMasks);
const maxPoints = Number(canvas.dataset.maxPoints);
const site = JSON.parse(canvas.dataset.site);
let drawn = JSON.parse(canvas.dataset.drawn).map((m) => ({ name: m.name, polygon: m.polygon }));
let draft = [];

const closeButton = document.getElementById("close-polygon");
const undoButton = document.getElementById("undo-point");
const cancelButton = document.getElementById("cancel-polygon");
const list = document.getElementById("mask-list");

const round = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
const toFrame = (polygon) => polygon.map(([x, y]) => `${x * width},${y * height}`).join(" ");

function shape(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function drawMasks() {
  const layer = document.getElementById("masks-layer");
  layer.replaceChildren(
    ...site.map((m) => shape("polygon", { points: toFrame(m.polygon), class: "mask site" })),
    ...drawn.map((m, i) => shape("polygon", { points: toFrame(m.polygon), class: "mask drawn", "data-index": i })),
  );
  const draftLayer = document.getElementById("draft-layer");
  draftLayer.replaceChildren();
  if (draft.length) {
    draftLayer.append(shape("polyline", { points: toFrame(draft), class: "draft" }));
    for (const [x, y] of draft) draftLayer.append(shape("circle", { cx: x * width, cy: y * height, r: Math.max(width, height) / 200, class: "point" }));
  }
  closeButton.disabled = draft.length < 3;
  undoButton.disabled = cancelButton.disabled = draft.length === 0;
}

function listMasks() {
  list.replaceChildren(...drawn.map((mask, index) => {
    const id = `mask-name-${index}`;
    const label = Object.assign(document.createElement("label"), { htmlFor: id, textContent: words.name });
    const input = Object.assign(document.createElement("input"), { id, value: mask.name, maxLength: 100, required: true });
    input.addEventListener("input", () => { drawn[index].name = input.value; });
    const count = Object.assign(document.createElement("span"), { className: "muted", textContent: ` ${mask.polygon.length} ${words.points} ` });
    const remove = Object.assign(document.createElement("button"), { type: "button", className: "danger", textContent: words.delete });
    remove.addEventListener("click", () => { drawn.splice(index, 1); refresh(); });
    const item = document.createElement("li");
    item.append(label, input, count, remove);
    return item;
  }));
  document.getElementById("no-mask").hidden = drawn.length > 0;
}

function refresh() { drawMasks(); listMasks(); }

function nextName() {
  const taken = new Set(drawn.map((m) => m.name));
  let n = drawn.length + 1;
  while (taken.has(`${words.unnamed}-${n}`)) n += 1;
  return `${words.unnamed}-${n}`;
}

canvas.addEventListener("click", (event) => {
  const matrix = canvas.getScreenCTM();
  if (!matrix) return;
  const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
  if (draft.length >= maxPoints) { toast(words.tooMany, "error"); return; }
  draft.push([round(point.x / width), round(point.y / height)]);
  drawMasks();
});

closeButton.addEventListener("click", () => {
  if (draft.length < 3) return;
  if (drawn.length >= maxMasks) { toast(words.tooMany, "error"); return; }
  drawn.push({ name: nextName(), polygon: draft });
  draft = [];
  refresh();
});
undoButton.addEventListener("click", () => { draft.pop(); drawMasks(); });
cancelButton.addEventListener("click", () => { draft = []; drawMasks(); });

document.getElementById("masks-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { masks: drawn.map((m) => ({ name: m.name.trim() || nextName(), polygon: m.polygon })) };
  try {
    const answer = await api(`/api/cameras/${encodeURIComponent(camera)}/masks`, { method: "PUT", body });
    drawn = answer.masks.filter((m) => m.source !== "site").map((m) => ({ name: m.name, polygon: m.polygon }));
    refresh();
    toast(words.saved);
  } catch (err) {
    toast(`${words.failed} ${err.message}`, "error");
  }
});

// A snapshot refused or failed leaves the neutral frame under the drawing.
document.getElementById("snapshot")?.addEventListener("error", (event) => event.target.remove());

refresh();
