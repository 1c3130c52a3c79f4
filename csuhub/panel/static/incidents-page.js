// What the incidents, logbook and wall pages share: bringing parts of the page up to
// date by fetching the page itself again (the server renders them, in the
// page's language and with the reader's masking) and swapping them in.

export async function swap(ids, url = location.pathname + location.search) {
  const answer = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!answer.ok) throw new Error(String(answer.status));
  const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
  for (const id of ids) {
    const now = document.getElementById(id);
    const next = fresh.getElementById(id);
    if (now && next) now.replaceWith(document.importNode(next, true));
  }
  return fresh;
}
