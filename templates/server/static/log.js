// The build page's log viewer: pages through a job's log, follows it live, colours ANSI, searches, collapses steps.
//
// The server renders the tail of the log without colours (section#log, see build.html); this script
// fetches the same tail as JSON from .../log/lines (raw text, so ANSI colours can be drawn), keeps a
// contiguous window [first, last] of lines in the DOM, loads earlier lines on demand, and follows the
// Server-Sent Events of .../log/stream from the window's last line on. Log text only ever reaches
// the DOM through text nodes (textContent): a line holding HTML stays text.
(() => {
  "use strict";
  const card = document.getElementById("log");
  if (!card) return;
  const box = card.querySelector("[data-testid=log]");
  const path = card.dataset.path;
  const PAGE = 1000;
  const MAX_LINES = 50000; // live lines beyond this drop the oldest from the DOM (they stay loadable)
  const STEP_START = /^--- step (.*)$/;
  const STEP_END = /^--- step .*: (passed|failed|skipped|canceled|error|running) \(.*\)$/;

  let first = Number(card.dataset.start) || 1;
  let last = Number(card.dataset.last) || 0;
  let total = Number(card.dataset.total) || 0;
  let atTail = true; // the window ends at the log's last known line: live lines are appended
  let source = null;

  // ---- ANSI SGR colours ---------------------------------------------------------------------
  const ESCAPE = /\x1b\[([0-9;:]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

  function color256(n) {
    if (n < 16) return null;
    if (n >= 232) {
      const v = 8 + (n - 232) * 10;
      return `rgb(${v},${v},${v})`;
    }
    const i = n - 16;
    const level = (c) => (c === 0 ? 0 : 55 + c * 40);
    return `rgb(${level(Math.floor(i / 36))},${level(Math.floor(i / 6) % 6)},${level(i % 6)})`;
  }

  function applySgr(state, params) {
    const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => Number(p) || 0);
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) Object.assign(state, { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false });
      else if (c === 1) state.bold = true;
      else if (c === 2) state.dim = true;
      else if (c === 3) state.italic = true;
      else if (c === 4) state.underline = true;
      else if (c === 7) state.inverse = true;
      else if (c === 22) state.bold = state.dim = false;
      else if (c === 23) state.italic = false;
      else if (c === 24) state.underline = false;
      else if (c === 27) state.inverse = false;
      else if (c >= 30 && c <= 37) state.fg = c - 30;
      else if (c >= 90 && c <= 97) state.fg = c - 90 + 8;
      else if (c === 39) state.fg = null;
      else if (c >= 40 && c <= 47) state.bg = c - 40;
      else if (c >= 100 && c <= 107) state.bg = c - 100 + 8;
      else if (c === 49) state.bg = null;
      else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
        const n = codes[i + 2] || 0;
        const value = n < 16 ? n : color256(n);
        if (c === 38) state.fg = value; else state.bg = value;
        i += 2;
      } else if ((c === 38 || c === 48) && codes[i + 1] === 2) {
        const value = `rgb(${codes[i + 2] & 255},${codes[i + 3] & 255},${codes[i + 4] & 255})`;
        if (c === 38) state.fg = value; else state.bg = value;
        i += 4;
      }
    }
  }

  function styled(state, text) {
    const plain = state.fg === null && state.bg === null && !state.bold && !state.dim && !state.italic && !state.underline && !state.inverse;
    if (plain) return document.createTextNode(text);
    const span = document.createElement("span");
    const classes = [];
    const fg = state.inverse ? state.bg : state.fg;
    const bg = state.inverse ? state.fg : state.bg;
    if (typeof fg === "number") classes.push(`a-fg${fg}`); else if (fg) span.style.color = fg;
    if (typeof bg === "number") classes.push(`a-bg${bg}`); else if (bg) span.style.backgroundColor = bg;
    if (state.inverse && fg === null) classes.push("a-inv-fg");
    if (state.inverse && bg === null) classes.push("a-inv-bg");
    if (state.bold) classes.push("a-bold");
    if (state.dim) classes.push("a-dim");
    if (state.italic) classes.push("a-italic");
    if (state.underline) classes.push("a-underline");
    span.className = classes.join(" ");
    span.textContent = text;
    return span;
  }

  // Fill `parent` with `text`, escape sequences drawn as styled spans (never parsed as HTML).
  function renderAnsi(text, parent) {
    const trimmed = text.replace(/\r+$/, "");
    if (trimmed.includes("\r")) text = trimmed.slice(trimmed.lastIndexOf("\r") + 1); // progress bars: last rewrite
    const state = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false };
    let at = 0;
    ESCAPE.lastIndex = 0;
    for (let m = ESCAPE.exec(text); m; m = ESCAPE.exec(text)) {
      if (m.index > at) parent.append(styled(state, text.slice(at, m.index)));
      if (m[2] === "m") applySgr(state, m[1] || "");
      at = ESCAPE.lastIndex;
    }
    if (at < text.length) parent.append(styled(state, text.slice(at)));
  }

  // ---- lines and step sections --------------------------------------------------------------
  function lineElement(n, text) {
    const line = document.createElement("div");
    line.className = "log-line";
    line.dataset.testid = "log-line";
    line.id = `L${n}`;
    const number = document.createElement("a");
    number.className = "ln";
    number.href = `#L${n}`;
    number.textContent = String(n);
    const body = document.createElement("span");
    body.className = "lt";
    renderAnsi(text, body);
    line.append(number, body);
    return line;
  }

  function stepSection(name, headLine) {
    const section = document.createElement("div");
    section.className = "log-step";
    section.dataset.testid = "log-step";
    section.dataset.step = name;
    const head = document.createElement("div");
    head.className = "log-step-head";
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "log-toggle";
    toggle.setAttribute("aria-expanded", "true");
    toggle.title = "Collapse this step";
    const label = document.createElement("span");
    label.className = "sr-only";
    label.textContent = `Collapse ${name}`;
    toggle.append(label);
    head.append(toggle, headLine);
    const body = document.createElement("div");
    body.className = "log-step-body";
    section.append(head, body);
    return section;
  }

  function plainSection() {
    const section = document.createElement("div");
    section.className = "log-pre";
    return section;
  }

  function bodyOf(section) {
    return section.classList.contains("log-step") ? section.querySelector(".log-step-body") : section;
  }

  // A step whose header is before the loaded lines: "step NAME, continued from line N".
  function continuedSection(step) {
    const head = document.createElement("div");
    head.className = "log-cont-head";
    const link = document.createElement("a");
    link.href = `#L${step.line}`;
    link.textContent = `line ${step.line}`;
    head.append(`step ${step.name}, continued from `, link);
    const section = stepSection(step.name, head);
    section.classList.add("log-cont");
    return section;
  }

  // Sections for lines start.. into `container`; `lastSection` continues the lines before them, else
  // `inside` ({line, name} from the API) names the step the first line belongs to.
  function build(start, lines, container, lastSection, inside) {
    let current = lastSection;
    if (!current && inside && lines.length) {
      current = continuedSection(inside);
      container.append(current);
    }
    lines.forEach((text, i) => {
      const n = start + i;
      const line = lineElement(n, text);
      const step = STEP_START.exec(text);
      if (step && !STEP_END.test(text)) {
        current = stepSection(step[1], line);
        container.append(current);
        return;
      }
      if (!current) {
        current = plainSection();
        container.append(current);
      }
      bodyOf(current).append(line);
    });
    return current;
  }

  function lastSection() {
    return box.lastElementChild;
  }

  function setWindow(page) {
    box.replaceChildren();
    matches = [];
    if (page.lines.length) build(page.start, page.lines, box, null, page.step);
    first = page.start;
    last = page.start + page.lines.length - 1;
    total = page.total;
    atTail = last >= total;
    updateChrome();
  }

  function prepend(page) {
    if (!page.lines.length) return;
    const fragment = document.createDocumentFragment();
    const tail = build(page.start, page.lines, fragment, null, page.step);
    const head = box.firstElementChild;
    if (head && tail && (head.classList.contains("log-pre") || head.classList.contains("log-cont"))) {
      // the old first lines belonged to the section the earlier page ends in
      bodyOf(tail).append(...bodyOf(head).childNodes);
      head.remove();
    }
    box.prepend(fragment);
    first = page.start;
    updateChrome();
  }

  function append(start, lines) {
    const follow = box.scrollTop + box.clientHeight >= box.scrollHeight - 24;
    const fragment = document.createDocumentFragment();
    build(start, lines, fragment, lastSection());
    box.append(fragment);
    const from = last + 1;
    last = start + lines.length - 1;
    total = Math.max(total, last);
    if (query) {
      // the search covers new lines too
      for (let n = Math.max(from, start); n <= last; n++) {
        const line = document.getElementById(`L${n}`);
        if (line) markLine(line);
      }
      showCount();
    }
    trim();
    updateChrome();
    if (follow) box.scrollTop = box.scrollHeight;
  }

  function trim() {
    while (last - first + 1 > MAX_LINES) {
      const line = document.getElementById(`L${first}`);
      if (line) {
        const section = line.closest(".log-step, .log-pre");
        if (section && section.classList.contains("log-step") && line.parentElement.classList.contains("log-step-head")) {
          // drop the whole step's head with it: its body lines become a plain section
          const rest = plainSection();
          rest.append(...bodyOf(section).childNodes);
          section.replaceWith(rest);
        } else {
          line.remove();
          if (section && !section.querySelector(".log-line")) section.remove();
        }
      }
      first += 1;
    }
  }

  // ---- paging -------------------------------------------------------------------------------
  const earlier = card.querySelector(".log-earlier");
  const earlierButton = card.querySelector(".log-load-earlier");
  const info = card.querySelector(".log-info");
  let laterButton = null;

  function updateChrome() {
    if (earlier) {
      earlier.hidden = first <= 1;
      const missing = earlier.querySelector(".log-first-missing");
      if (missing) missing.textContent = String(first - 1);
    }
    if (info) info.textContent = `${total} line${total === 1 ? "" : "s"}`;
    if (!laterButton) {
      laterButton = document.createElement("button");
      laterButton.type = "button";
      laterButton.className = "btn log-load-later";
      laterButton.textContent = "Load later lines";
      laterButton.addEventListener("click", loadLater);
      box.after(laterButton);
    }
    laterButton.hidden = atTail;
    const empty = card.querySelector(".log-empty");
    if (empty && last >= first) empty.hidden = true;
  }

  async function fetchLines(params) {
    const answer = await fetch(`${path}/lines?${new URLSearchParams(params)}`, { headers: { Accept: "application/json" } });
    if (!answer.ok) throw new Error(`${answer.status} ${answer.statusText}`);
    return answer.json();
  }

  async function loadEarlier() {
    if (first <= 1) return;
    const start = Math.max(1, first - PAGE);
    const keep = box.scrollHeight - box.scrollTop;
    prepend(await fetchLines({ start, count: first - start }));
    box.scrollTop = box.scrollHeight - keep; // the lines in view stay in view
    if (query) runSearch(false);
  }

  async function loadLater() {
    const page = await fetchLines({ start: last + 1, count: PAGE });
    total = page.total;
    if (page.lines.length) append(page.start, page.lines);
    atTail = last >= total;
    updateChrome();
  }

  // ---- anchors (#L123) ----------------------------------------------------------------------
  function highlight(n) {
    for (const old of box.querySelectorAll(".log-line.highlight")) old.classList.remove("highlight");
    const line = document.getElementById(`L${n}`);
    if (!line) return false;
    line.classList.add("highlight");
    const section = line.closest(".log-step.collapsed");
    if (section && !line.parentElement.classList.contains("log-step-head")) setCollapsed(section, false);
    line.scrollIntoView({ block: "center" });
    return true;
  }

  function anchor() {
    const m = /^#L(\d+)$/.exec(location.hash);
    return m ? Number(m[1]) : null;
  }

  async function goToAnchor() {
    const n = anchor();
    if (n === null) return;
    if (n < first || n > last) {
      const start = Math.max(1, n - 200);
      setWindow(await fetchLines({ start, count: PAGE }));
      if (query) runSearch(false);
    }
    highlight(n);
  }

  // ---- collapsing ---------------------------------------------------------------------------
  function setCollapsed(section, collapsed) {
    section.classList.toggle("collapsed", collapsed);
    const toggle = section.querySelector(".log-toggle");
    if (toggle) {
      toggle.setAttribute("aria-expanded", String(!collapsed));
      toggle.title = collapsed ? "Expand this step" : "Collapse this step";
    }
  }

  box.addEventListener("click", (event) => {
    const toggle = event.target.closest(".log-toggle");
    if (toggle) {
      const section = toggle.closest(".log-step");
      setCollapsed(section, !section.classList.contains("collapsed"));
    }
  });

  // ---- search -------------------------------------------------------------------------------
  const searchBox = card.querySelector(".log-search");
  const input = card.querySelector("[data-testid=log-search]");
  const count = card.querySelector("[data-testid=log-search-count]");
  const filter = card.querySelector(".log-filter");
  const position = card.querySelector(".log-search-pos");
  let query = "";
  let matches = []; // each match: the <mark> elements it spans
  let current = -1;

  function clearMarks() {
    for (const mark of box.querySelectorAll("mark.match")) {
      const parent = mark.parentNode;
      mark.replaceWith(...mark.childNodes);
      parent.normalize();
    }
    for (const line of box.querySelectorAll(".log-line.hit")) line.classList.remove("hit");
    matches = [];
    current = -1;
    if (position) position.textContent = "";
  }

  // Wrap every occurrence of the query in one line (across its colour spans) in <mark class="match">.
  function markLine(line) {
    const body = line.querySelector(".lt");
    const walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT);
    const nodes = [];
    let text = "";
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      nodes.push({ node, start: text.length });
      text += node.data;
    }
    const haystack = text.toLowerCase();
    const ranges = [];
    for (let i = haystack.indexOf(query); i >= 0 && query; i = haystack.indexOf(query, i + query.length)) {
      ranges.push([i, i + query.length]);
    }
    if (!ranges.length) return;
    line.classList.add("hit");
    const perMatch = ranges.map(() => []);
    for (const { node, start } of nodes) {
      const end = start + node.data.length;
      const pieces = [];
      let at = start;
      ranges.forEach(([s, e], index) => {
        const from = Math.max(s, start);
        const to = Math.min(e, end);
        if (from >= to) return;
        if (from > at) pieces.push(document.createTextNode(node.data.slice(at - start, from - start)));
        const mark = document.createElement("mark");
        mark.className = "match";
        mark.textContent = node.data.slice(from - start, to - start);
        perMatch[index].push(mark);
        pieces.push(mark);
        at = to;
      });
      if (!pieces.length) continue;
      if (at < end) pieces.push(document.createTextNode(node.data.slice(at - start)));
      node.replaceWith(...pieces);
    }
    matches.push(...perMatch);
  }

  function showCount() {
    if (!count) return;
    count.textContent = query ? `${matches.length} match${matches.length === 1 ? "" : "es"}` : "";
    box.classList.toggle("filtering", Boolean(query && filter && filter.checked));
  }

  function setCurrent(index) {
    for (const mark of box.querySelectorAll("mark.match.current")) mark.classList.remove("current");
    if (!matches.length) {
      current = -1;
      return;
    }
    current = (index + matches.length) % matches.length;
    const marks = matches[current];
    for (const mark of marks) mark.classList.add("current");
    const section = marks[0].closest(".log-step.collapsed");
    if (section) setCollapsed(section, false);
    marks[0].scrollIntoView({ block: "center" });
    if (position) position.textContent = `${current + 1} of ${matches.length}`;
  }

  function runSearch(jump = true) {
    clearMarks();
    query = input.value.toLowerCase();
    if (query) for (const line of box.querySelectorAll(".log-line")) markLine(line);
    showCount();
    if (jump && matches.length) setCurrent(0);
  }

  if (searchBox && input) {
    searchBox.hidden = false;
    let timer = null;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => runSearch(true), 120);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault();
      clearTimeout(timer);
      if (input.value.toLowerCase() !== query) runSearch(true);
      else setCurrent(current + (event.shiftKey ? -1 : 1));
    });
    card.querySelector(".log-next").addEventListener("click", () => setCurrent(current + 1));
    card.querySelector(".log-prev").addEventListener("click", () => setCurrent(current - 1));
    if (filter) filter.addEventListener("change", showCount);
  }

  // ---- live ---------------------------------------------------------------------------------
  let queued = [];
  let flushing = false;

  function flush() {
    flushing = false;
    if (!queued.length) return;
    // contiguous runs of numbered lines
    let run = [];
    let runStart = 0;
    for (const [n, text] of queued) {
      if (n <= last && atTail) continue; // already shown
      if (!atTail) {
        total = Math.max(total, n);
        continue;
      }
      if (run.length && n !== runStart + run.length) {
        append(runStart, run);
        run = [];
      }
      if (!run.length) {
        if (n !== last + 1) {
          // a gap (should not happen: the stream resumes from `last`): fetch it on the next page load
          atTail = false;
          total = Math.max(total, n);
          continue;
        }
        runStart = n;
      }
      run.push(text);
    }
    if (run.length) append(runStart, run);
    queued = [];
    updateChrome();
  }

  function follow() {
    const live = card.dataset.complete !== "true" && ["queued", "running"].includes(card.dataset.status);
    if (!live || !window.EventSource) return;
    source = new EventSource(`${path}/stream?after=${atTail ? last : total}`);
    source.onmessage = (event) => {
      let text = event.data;
      try {
        const line = JSON.parse(event.data);
        text = typeof line.text === "string" ? line.text : String(line.text ?? "");
      } catch (_) { /* a plain line */ }
      queued.push([Number(event.lastEventId), text]);
      if (!flushing) {
        flushing = true;
        requestAnimationFrame(flush);
      }
    };
    source.addEventListener("end", () => {
      source.close();
      card.dataset.complete = "true";
      const note = card.querySelector(".log-live");
      if (note) note.hidden = true;
    });
  }

  // ---- start --------------------------------------------------------------------------------
  async function start() {
    if (earlierButton) {
      earlierButton.addEventListener("click", (event) => {
        event.preventDefault(); // the link pages without JavaScript; here the lines are added in place
        loadEarlier().catch(report);
      });
    }
    const noJsLater = card.querySelector(".log-later-nojs");
    if (noJsLater) noJsLater.remove(); // "Load later lines" below the log does it in place
    window.addEventListener("hashchange", () => goToAnchor().catch(report));
    const n = anchor();
    const asked = Number(new URLSearchParams(location.search).get("start")) || 0;
    let page;
    if (n !== null && n < Math.max(1, total - PAGE + 1)) page = await fetchLines({ start: Math.max(1, n - 200), count: PAGE });
    else if (asked >= 1 && n === null) page = await fetchLines({ start: asked, count: PAGE });
    else page = await fetchLines({ tail: PAGE });
    setWindow(page);
    if (n !== null) highlight(n);
    else box.scrollTop = box.scrollHeight;
    card.classList.add("js-ready");
    follow();
  }

  function report(error) {
    const note = document.createElement("p");
    note.className = "log-error small";
    note.setAttribute("role", "alert");
    note.textContent = `The log could not be loaded: ${error.message || error}. The page shows what the server rendered.`;
    box.before(note);
  }

  start().catch(report);
})();
