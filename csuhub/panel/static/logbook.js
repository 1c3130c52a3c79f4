// The logbook page: a note posted to /api/logbook/notes, then the day's lines
// fetched again from the page itself.

import { api, messages, swap, toast } from "./panel.js";

const words = messages();
const form = document.getElementById("note-form");
if (form) {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await api("/api/logbook/notes", { method: "POST", body: { text: form.text.value } });
      form.reset();
      toast(words.noted);
      await swap(["lines"]);
    } catch (err) {
      toast(`${words.failed} ${err.message}`, "error");
    } finally {
      button.disabled = false;
    }
  });
}
