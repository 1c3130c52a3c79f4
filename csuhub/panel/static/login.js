// The login form: posts to /api/auth/login, then goes on to the page asked for.
import { api, messages } from "./panel.js";

const form = document.getElementById("login");
const said = document.getElementById("login-error");
const words = messages();

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  said.hidden = true;
  const user = form.user.value.trim();
  const password = form.password.value;
  try {
    await api("/api/auth/login", { method: "POST", body: { user, password } });
    location.assign(form.dataset.next || "/panel/");
  } catch (err) {
    const why = err.body && err.body.error ? err.body.error : "";
    said.textContent = err.status === 429 ? words.locked
      : err.status === 503 ? words.busy
      : why.includes("expired") ? words.expired
      : words.refused;
    said.hidden = false;
    form.password.value = "";
    form.password.focus();
  }
});
