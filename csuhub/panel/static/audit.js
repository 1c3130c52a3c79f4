// The audit search: the form's filters sent to /api/audit (which audits the
// search), the entries shown newest first; the export downloads
// /api/audit/export for the period. The page's URL keeps the filters, so a
// search can be shared or reopened. The API has no outcome filter: the
// outcome is applied here to the entries it returned (the count says so).
import { api, el, fill, messages, toast, when } from "./panel.js";

const form = document.getElementById("audit-search");
const body = document.querySelector("#audit-results tbody");
const count = document.getElementById("audit-count");
const words = messages();
const API_FIELDS = ["actor", "action", "target", "from", "to", "limit"];
// Intl refuses timeZoneName beside dateStyle (panel.js's when() asks for both):
// the column's heading names the zone instead
const NO_ZONE_NAME = { timeZoneName: undefined };

const outcomeLabel = (outcome) => words[`outcome${outcome.charAt(0).toUpperCase()}${outcome.slice(1)}`] || outcome;

function apiQuery() {
  const query = new URLSearchParams();
  for (const name of API_FIELDS) {
    const value = form.elements[name].value.trim();
    if (value) query.set(name, value);
  }
  return query;
}

function row(entry) {
  return el("tr", { "data-id": entry.id },
    el("td", { text: String(entry.id) }),
    el("td", { text: when(entry.ts, NO_ZONE_NAME) }),
    el("td", { text: entry.actor ?? "" }),
    el("td", { text: entry.role ?? "" }),
    el("td", { text: entry.action }),
    el("td", { text: entry.target ?? "" }),
    el("td", { class: `outcome ${entry.outcome}`, text: outcomeLabel(entry.outcome) }),
    el("td", { text: entry.reason ?? "" }),
    el("td", { class: "details", text: entry.details && entry.details !== "{}" ? entry.details : "" }),
  );
}

async function search() {
  const query = apiQuery();
  const outcome = form.elements.outcome.value;
  const page = new URLSearchParams(query);
  if (outcome) page.set("outcome", outcome);
  history.replaceState(null, "", `${location.pathname}${page.size ? `?${page}` : ""}`);
  try {
    const data = await api(`/api/audit${query.size ? `?${query}` : ""}`);
    const shown = outcome ? data.entries.filter((entry) => entry.outcome === outcome) : data.entries;
    body.replaceChildren(...shown.map(row));
    count.textContent = !shown.length ? words.none
      : outcome ? fill(words.filtered, { n: shown.length, total: data.count })
      : fill(words.count, { n: shown.length });
  } catch (err) {
    body.replaceChildren();
    count.textContent = fill(words.failed, { error: err.message });
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  search();
});

document.getElementById("audit-export").addEventListener("click", () => {
  const start = form.elements.from.value;
  const end = form.elements.to.value;
  if (!start || !end) {
    toast(words.exportNeeds, "error");
    form.elements[start ? "to" : "from"].focus();
    return;
  }
  // a plain download: the browser saves the CSV the API streams (attachment)
  const link = el("a", { href: `/api/audit/export?${new URLSearchParams({ from: start, to: end })}`, download: "audit.csv", hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  toast(words.exported);
});

search();
