// The password change form: posts to /api/auth/password.
import { api, messages } from "./panel.js";

const form = document.getElementById("password-form");
const said = document.getElementById("password-error");
const done = document.getElementById("password-done");
const words = messages();

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  said.hidden = true;
  done.hidden = true;
  if (form.new.value !== form.again.value) {
    said.textContent = words.mismatch;
    said.hidden = false;
    return;
  }
  const body = { current: form.current.value, new: form.new.value };
  if (form.user) body.user = form.user.value.trim();
  try {
    await api("/api/auth/password", { method: "POST", body });
    done.hidden = false;
    form.reset();
  } catch (err) {
    // the hub's own reason (too short, too common...) is shown as it is: it is precise
    said.textContent = err.status === 401 ? words.refused : (err.message || words.refused);
    said.hidden = false;
  }
});
