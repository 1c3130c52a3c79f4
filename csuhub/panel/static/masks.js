// The masks page: ask for a lift, approve or refuse someone else's, end one.
// The API decides who may (four eyes, scope); the page reloads to show it.
import { api, messages, toast } from "./panel.js";

const words = messages();

function refused(err) {
  toast(`${words.failed} ${err.message}`, "error");
}

document.getElementById("ask-lift")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const reason = form.reason.value.trim();
  if (!reason) { toast(words.reason, "error"); form.reason.focus(); return; }
  const camera = encodeURIComponent(form.camera.value);
  try {
    await api(`/api/cameras/${camera}/mask-lifts`, {
      method: "POST", body: { reason, duration: Number(form.duration.value) },
    });
    sessionStorage.setItem("masks-said", words.asked);
    location.reload();
  } catch (err) { refused(err); }
});

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const { action, lift } = button.dataset;
  const body = {};
  const why = document.getElementById(`decision-${lift}`);
  if (why && why.value.trim()) body.reason = why.value.trim();
  button.disabled = true;
  try {
    if (action === "end") await api(`/api/mask-lifts/${lift}/end`, { method: "POST" });
    else await api(`/api/mask-lifts/${lift}/${action}`, { method: "POST", body });
    sessionStorage.setItem("masks-said", words.done);
    location.reload();
  } catch (err) { button.disabled = false; refused(err); }
});

const said = sessionStorage.getItem("masks-said");
if (said) { sessionStorage.removeItem("masks-said"); toast(said); }
