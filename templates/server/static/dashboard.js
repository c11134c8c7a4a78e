// The dashboard refreshes its live part (#live) every few seconds while the tab is visible.
// Without JavaScript the page is complete; reloading it does the same. No refresh happens while the
// keyboard focus is inside #live (it would move the focus), or when "Auto-refresh" is unticked.
(function () {
  "use strict";
  const live = document.getElementById("live");
  if (!live || !window.fetch || !window.DOMParser) return;
  const seconds = Math.max(2, Number(live.dataset.refreshSeconds) || 5);
  const toggle = document.getElementById("auto-refresh");
  const key = "runner.dashboard.autoRefresh";
  if (toggle) {
    toggle.closest("label").hidden = false;
    try { toggle.checked = localStorage.getItem(key) !== "off"; } catch (_) { /* storage blocked */ }
    toggle.addEventListener("change", function () {
      try { localStorage.setItem(key, toggle.checked ? "on" : "off"); } catch (_) { /* storage blocked */ }
      if (toggle.checked) refresh();
    });
  }
  let busy = false;

  async function refresh() {
    if (busy || document.hidden || (toggle && !toggle.checked) || live.contains(document.activeElement)) return;
    busy = true;
    try {
      const answer = await fetch(window.location.href, { headers: { Accept: "text/html" }, cache: "no-store" });
      if (!answer.ok) return;
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const fresh = page.getElementById("live");
      const sub = page.querySelector(".page-head .sub");
      if (fresh) live.replaceChildren(...fresh.childNodes);
      const oldSub = document.querySelector(".page-head .sub");
      if (sub && oldSub) oldSub.textContent = sub.textContent;
    } catch (_) {
      // the server is restarting or the network is down: try again at the next tick
    } finally {
      busy = false;
    }
  }

  setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
