// The requisition pages: register one (POST /api/requisitions), then each
// step of the officer through the API (export, hand-over, close), the page
// reloaded after each so that it shows what the hub recorded. Downloads are
// plain links to /api/requisitions/{id}/files/{name}, audited by the hub.
import { api, messages, toast } from "./panel.js";

const text = messages();

function fail(box, err) {
  box.textContent = err.message;
  box.hidden = false;
}

const create = document.getElementById("create-form");
if (create) {
  create.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("create-error");
    error.hidden = true;
    const value = (id) => document.getElementById(id).value.trim();
    const cameras = [...create.querySelectorAll("input[name=cameras]:checked")].map((box) => box.value);
    if (!cameras.length) {
      fail(error, new Error(text.noCamera));
      return;
    }
    const button = create.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const created = await api("/api/requisitions", {
        method: "POST",
        body: {
          reference: value("reference"),
          service: value("service"),
          officer: value("officer"),
          legal_frame: value("legal-frame"),
          cameras,
          from: value("req-from"),
          to: value("req-to"),
          reason: value("req-reason"),
        },
      });
      location.assign(`/panel/requisitions/${created.id}`);
    } catch (err) {
      fail(error, err);
      button.disabled = false;
    }
  });
}

const actions = document.querySelector("section.actions");
if (actions) {
  const id = actions.dataset.req;
  const error = document.getElementById("step-error");
  // one step: its body, then the page again (the status, files and receipt as recorded)
  const step = (formId, path, body) => {
    const form = document.getElementById(formId);
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      for (const button of actions.querySelectorAll("button")) button.disabled = true;
      toast(text.working);
      try {
        await api(`/api/requisitions/${id}/${path}`, { method: "POST", body: body() });
        location.reload();
      } catch (err) {
        fail(error, err);
        for (const button of actions.querySelectorAll("button")) button.disabled = false;
      }
    });
  };
  step("export-form", "export", () => ({}));
  step("deliver-form", "deliver", () => ({ to: document.getElementById("deliver-to").value.trim() }));
  step("close-form", "close", () => ({ outcome: document.getElementById("close-outcome").value }));
}
