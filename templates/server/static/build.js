// The build page's live parts besides the log: cancel/rerun through the API with a remembered token,
// and, while the build runs, a refresh of the summary, graph and jobs every few seconds.
// Without this script the same buttons post a form to /builds/{id}/cancel|rerun (see pages/build.py).
(() => {
  "use strict";
  const TOKEN_KEY = "runner-api-token";
  const REFRESH_MS = 3000;

  // ---- cancel and rerun ---------------------------------------------------------------------
  const form = document.querySelector("form.build-actions");
  if (form) {
    const input = form.querySelector("[data-testid=api-token]");
    const message = form.querySelector(".build-actions-msg");
    const say = (text) => { if (message) message.textContent = text; };
    let stored = null;
    try { stored = localStorage.getItem(TOKEN_KEY); } catch (_) { /* storage disabled */ }
    if (stored && input && !input.value) input.value = stored;

    form.addEventListener("submit", async (event) => {
      const button = event.submitter;
      const action = button && button.dataset.testid;
      if (action !== "cancel" && action !== "rerun") return;
      event.preventDefault();
      const token = (input && input.value.trim()) || "";
      if (!token) {
        say("Enter the API token (RUNNER_API_TOKEN).");
        if (input) input.focus();
        return;
      }
      button.disabled = true;
      say(action === "cancel" ? "Canceling…" : "Starting a rerun…");
      try {
        const answer = await fetch(`/api/builds/${form.dataset.build}/${action}`, {
          method: "POST",
          headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
        });
        let body = {};
        try { body = await answer.json(); } catch (_) { /* not JSON */ }
        if (answer.status === 401 || answer.status === 403) {
          try { localStorage.removeItem(TOKEN_KEY); } catch (_) { /* storage disabled */ }
          say(answer.status === 401 ? "Wrong token: that is not the server's API token." : (body.detail || "Refused."));
          return;
        }
        if (!answer.ok) {
          say(body.detail || `${answer.status} ${answer.statusText}`);
          return;
        }
        try { localStorage.setItem(TOKEN_KEY, token); } catch (_) { /* storage disabled */ }
        if (action === "rerun" && body.build_id) location.assign(`/builds/${body.build_id}`);
        else if (action === "rerun") say(`Not rerun: ${body.ignored || "ignored"}`);
        else location.reload();
      } catch (error) {
        say(`The request failed: ${error.message || error}`);
      } finally {
        button.disabled = false;
      }
    });
  }

  // ---- refresh while running ----------------------------------------------------------------
  const live = document.getElementById("build-live");
  if (!live || live.dataset.live !== "true" || !window.DOMParser) return;

  function openDetails(root) {
    const open = new Set();
    for (const card of root.querySelectorAll(".job-card")) {
      if (card.querySelector("details[open]")) open.add(card.id);
    }
    return open;
  }

  async function refresh() {
    const query = new URLSearchParams(location.search);
    query.set("log", "0"); // the log viewer follows its own stream: no lines needed
    const answer = await fetch(`${location.pathname}?${query}`, { headers: { Accept: "text/html" } });
    if (!answer.ok) return true;
    const page = new DOMParser().parseFromString(await answer.text(), "text/html");
    const fresh = page.getElementById("build-live");
    const current = document.getElementById("build-live");
    if (!fresh || !current) return false;
    const open = openDetails(current);
    for (const id of open) {
      const details = fresh.querySelector(`#${CSS.escape(id)} details`);
      if (details) details.open = true;
    }
    current.replaceWith(fresh);
    const status = document.getElementById("build-status");
    const newStatus = page.getElementById("build-status");
    if (status && newStatus) {
      status.className = newStatus.className;
      status.textContent = newStatus.textContent;
      document.title = page.title;
    }
    // job statuses of the log's job selector
    const links = document.querySelectorAll("[data-testid=job-link]");
    const freshLinks = page.querySelectorAll("[data-testid=job-link]");
    if (links.length === freshLinks.length) links.forEach((link, i) => link.replaceChildren(...freshLinks[i].childNodes));
    const cancel = document.querySelector("[data-testid=cancel]");
    if (cancel && !page.querySelector("[data-testid=cancel]")) cancel.remove();
    return fresh.dataset.live === "true";
  }

  function schedule() {
    setTimeout(async () => {
      let again = true;
      try { again = await refresh(); } catch (_) { /* the server restarting: try again later */ }
      if (again) schedule();
    }, REFRESH_MS);
  }
  schedule();
})();
