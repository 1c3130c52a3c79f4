// Accessible bar charts drawn as inline SVG from a data table: no library, no
// CDN. The table stays on the page as the data for whoever does not see the
// chart; the SVG is an image (role="img") named by the table's caption, and
// each bar carries its label and its number as text, so nothing is read off
// a colour or a length alone.

const NS = "http://www.w3.org/2000/svg";
const ROW = 30; // px per bar
const LABEL = 220; // px for the labels on the left
const WIDTH = 720;
const GAP = 8;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// The rows of a two-column table: a <th scope="row"> label and a <td data-value>.
export function rowsOf(table) {
  const body = table.tBodies[0];
  if (!body) return [];
  return [...body.rows].map((row) => ({
    label: row.cells[0].textContent.trim(),
    value: Number(row.cells[1].dataset.value ?? row.cells[1].textContent),
  })).filter((row) => Number.isFinite(row.value));
}

// Shorten a label that would not fit beside its bar (the table has it whole).
function fit(text, max = 30) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function number(value, lang) {
  return new Intl.NumberFormat(lang === "fr" ? "fr-FR" : "en-GB", { maximumFractionDigits: 3 }).format(value);
}

// An SVG bar chart of ``rows`` [{label, value}], named ``title``.
export function barChart(rows, { title = "", description = "", unit = "", lang = "fr", id = "" } = {}) {
  const max = Math.max(0, ...rows.map((row) => row.value));
  const height = rows.length * ROW + GAP;
  const room = WIDTH - LABEL - 90;
  const chart = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${height}`, role: "img", class: "barchart", "data-chart": id,
    "aria-labelledby": `${id}-t ${id}-d`, preserveAspectRatio: "xMinYMin meet",
  });
  chart.append(svg("title", { id: `${id}-t` }, title), svg("desc", { id: `${id}-d` }, description));
  rows.forEach((row, index) => {
    const y = index * ROW + GAP;
    const length = max > 0 ? Math.max(row.value > 0 ? 2 : 0, (row.value / max) * room) : 0;
    const shown = `${number(row.value, lang)}${unit ? ` ${unit}` : ""}`;
    const bar = svg("g", { class: "bar", "data-label": row.label, "data-value": row.value });
    bar.append(
      svg("text", { x: LABEL - 8, y: y + ROW / 2, class: "label", "text-anchor": "end", "dominant-baseline": "middle" }, fit(row.label)),
      svg("rect", { x: LABEL, y: y + 3, width: length.toFixed(1), height: ROW - 10, rx: 2 }),
      svg("text", { x: LABEL + length + 6, y: y + ROW / 2, class: "value", "dominant-baseline": "middle" }, shown),
    );
    chart.append(bar);
  });
  return chart;
}

// Draw every table[data-chart] of ``root`` into its figure's .bars box.
export function drawAll(root = document, { lang = "fr", describe = (title) => title } = {}) {
  const drawn = [];
  for (const table of root.querySelectorAll("table[data-chart]")) {
    const box = root.querySelector(`.bars[data-for="${table.id}"]`);
    if (!box) continue;
    const caption = table.closest("figure")?.querySelector("figcaption")?.textContent.trim() ?? "";
    const chart = barChart(rowsOf(table), {
      title: caption, description: describe(caption), unit: table.dataset.unit || "",
      lang, id: `chart-${table.dataset.chart}`,
    });
    box.replaceChildren(chart);
    drawn.push(chart);
  }
  return drawn;
}
