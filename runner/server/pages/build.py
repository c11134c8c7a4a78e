"""The build page (`/builds/{id}`): the build, its jobs as a `needs` graph, steps, phases and one job's log.

The page reads counts, never all test cases, and only the tail of one job's log (through the line
index), so a build with thousands of cases and a 50 MB log renders as fast as a small one. The log
viewer shows one job (`?job=NAME`; default: the first failed job, else a running one, else the
first); `static/log.js` takes it over to page back, stream live lines, colour and search.

Cancel and rerun work without JavaScript: a form posts the API token to `/builds/{id}/cancel` or
`/rerun`, checked in constant time, answered with 303 to the build (or its rerun) or a readable 401/403.
"""

from __future__ import annotations

import hmac
import re
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from runner.server.ids import RowId
from runner.server.pages import environment, queries, render

router = APIRouter(include_in_schema=False)

TAIL_LINES = 1000  # lines of the selected job's log rendered on the page
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_STEP_START = re.compile(r"^--- step (?P<name>.*)$")
_STEP_END = re.compile(r"^--- step .*: (passed|failed|skipped|canceled|error|running) \(.*\)$")

# phases in the order a job goes through them; `steps` is the sum of the steps' durations
PHASES = [
    ("clone", "clone"),
    ("workspace", "workspace copy"),
    ("image", "image pull/build"),
    ("container_start", "container start"),
    ("cache_restore", "cache restore"),
    ("services", "services ready"),
    ("steps", "steps"),
    ("cache_save", "cache save"),
    ("upload", "upload"),
]


def job_path(name: str) -> str:
    """A job name as one URL path segment (`/`, spaces and parentheses included)."""
    return quote(name, safe="")


def plain(text: str) -> str:
    """A log line as a terminal would leave it: escape sequences dropped, `\\r` rewrites kept last."""
    text = _ANSI.sub("", text)
    if "\r" in text.rstrip("\r"):
        text = text.rstrip("\r").rsplit("\r", 1)[-1]
    return text


def selected_job(jobs: list[dict[str, Any]], wanted: str | None) -> dict[str, Any] | None:
    """`?job=`, else the first failed job, else a running one, else the first."""
    for predicate in (
        lambda j: j["name"] == wanted,
        lambda j: j["status"] in ("failed", "error"),
        lambda j: j["status"] == "running",
        lambda j: True,
    ):
        for job in jobs:
            if predicate(job):
                return job
    return None


def phase_view(job: dict[str, Any]) -> dict[str, Any]:
    """The phase bar of a job: segments with seconds and their share of the job's time."""
    recorded = job.get("phases") or {}
    seconds = {key: float(recorded.get(key) or 0.0) for key, _ in PHASES}
    seconds["steps"] = sum(float(step["duration"] or 0.0) for step in job["steps"])
    known = sum(seconds.values())
    total = max(float(job.get("duration") or 0.0), known)
    segments = [
        {"key": key, "label": label, "seconds": seconds[key], "share": 100.0 * seconds[key] / total}
        for key, label in PHASES
        if seconds[key] > 0 and total > 0
    ]
    other = total - known
    if total > 0 and other > 0.05:
        segments.append({"key": "other", "label": "other", "seconds": other, "share": 100.0 * other / total})
    first = recorded.get("first_line")
    return {
        "segments": segments,
        "total": total,
        "first_line": float(first) if first is not None else None,
        "first_share": min(100.0, 100.0 * float(first) / total) if first is not None and total > 0 else None,
    }


def log_sections(start: int, lines: list[str], inside: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Lines grouped under the step header (`--- step NAME`) that opens them; lines before any step
    (clone, image, services) form a section without a name, unless `inside` names the step whose
    header came before `start` (`{"line", "name"}`): then they continue that step."""
    first: dict[str, Any] = {"step": None, "lines": []}
    if inside:
        first.update(step=inside["name"], **{"from": inside["line"]})
    sections = [first]
    for number, text in enumerate(lines, start):
        found = _STEP_START.match(text)
        if found and not _STEP_END.match(text):
            sections.append({"step": found["name"], "lines": []})
        sections[-1]["lines"].append((number, plain(text)))
    return [s for s in sections if s["lines"] or s["step"]]


@router.get("/builds/{build_id}", response_class=HTMLResponse)
def build_page(
    request: Request, build_id: RowId, job: str | None = None, start: int | None = None, log: int = 1
) -> HTMLResponse:
    """`?job=` picks the log's job; `?start=N` shows its lines from N instead of the tail (paging
    without JavaScript); `?log=0` leaves the lines out (build.js refreshing the rest of the page)."""
    from runner.logs.lines import read_lines, tail_lines
    from runner.server.graph import layout

    build = queries(request).get(build_id)
    if build is None:
        raise HTTPException(404, f"no build {build_id}")
    jobs = build["jobs"]
    selected = selected_job(jobs, job)
    shown: dict[str, Any] | None = None
    if selected is not None:
        count = TAIL_LINES if log else 0
        storage = request.app.state.backends.storage
        if start is not None and start >= 1:
            page = read_lines(storage, build_id, selected["name"], start, count)
        else:
            page = tail_lines(storage, build_id, selected["name"], count)
        query = {"job": selected["name"]}
        shown = {
            "job": selected,
            "path": f"/api/builds/{build_id}/jobs/{job_path(selected['name'])}/log",
            "filename": f"build-{build_id}-{selected['name'].replace('/', '_')}.log",
            "total": page.total,
            "start": page.start,
            "last": page.last,
            "complete": page.complete,
            "sections": log_sections(page.start, page.lines, page.step),
            "earlier": "?" + urlencode({**query, "start": max(1, page.start - TAIL_LINES)}) + "#log",
            "later": f"?{urlencode({**query, 'start': page.last + 1})}#log" if page.last < page.total else "",
        }
    tests = {"total": 0, "failed": 0}
    for entry in jobs:
        tests["total"] += entry["tests"]["total"]
        tests["failed"] += entry["tests"]["failed"] + entry["tests"]["error"]
    return render(
        "build.html",
        build=build,
        jobs=jobs,
        graph=layout(jobs),
        phases={entry["name"]: phase_view(entry) for entry in jobs},
        log=shown,
        tests=tests,
        job_path=job_path,
        job_query=lambda name: "?" + urlencode({"job": name}),
        live=build["status"] in ("queued", "running"),
        token_set=bool(request.app.state.service.settings.api_token),
    )


def _message(title: str, text: str, build_id: int, status_code: int) -> HTMLResponse:
    template = environment().from_string(
        '{% extends "base.html" %}{% block title %}runner: {{ title }}{% endblock %}'
        '{% block body %}<div class="card"><div class="card-body"><h1>{{ title }}</h1>'
        '<p>{{ text }}</p><p><a href="/builds/{{ build_id }}">Back to build {{ build_id }}</a></p>'
        "</div></div>{% endblock %}"
    )
    body = template.render(title=title, text=text, build_id=build_id)
    return HTMLResponse(body, status_code=status_code)


async def _checked_token(request: Request, build_id: int) -> HTMLResponse | None:
    """None when the form carries the API token; else the page that says what is wrong."""
    expected = request.app.state.service.settings.api_token
    if not expected:
        return _message(
            "Refused",
            "Cancel and rerun are refused until the server has RUNNER_API_TOKEN set.",
            build_id,
            403,
        )
    if "urlencoded" not in request.headers.get("content-type", ""):
        return _message("Refused", "Send the form (application/x-www-form-urlencoded).", build_id, 400)
    form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    given = (form.get("token") or [""])[0].strip()
    if not given:
        return _message("Token needed", "Enter the API token (RUNNER_API_TOKEN) to do this.", build_id, 401)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return _message(
            "Wrong token", "That is not the server's API token (RUNNER_API_TOKEN).", build_id, 401
        )
    return None


@router.post("/builds/{build_id}/cancel")
async def cancel_form(request: Request, build_id: RowId) -> Response:
    build = queries(request).get(build_id)
    if build is None:
        raise HTTPException(404, f"no build {build_id}")
    refused = await _checked_token(request, build_id)
    if refused is not None:
        return refused
    done = await run_in_threadpool(request.app.state.service.cancel, build_id, "canceled by a user")
    if not done:
        text = f"Build {build_id} has already finished ({build['status']}): there is nothing to cancel."
        return _message("Already finished", text, build_id, 409)
    return RedirectResponse(f"/builds/{build_id}", status_code=303)


@router.post("/builds/{build_id}/rerun")
async def rerun_form(request: Request, build_id: RowId) -> Response:
    from runner.server.builds import BrokerUnavailable, SourceUnavailable

    if queries(request).get(build_id) is None:
        raise HTTPException(404, f"no build {build_id}")
    refused = await _checked_token(request, build_id)
    if refused is not None:
        return refused
    try:
        outcome = await run_in_threadpool(request.app.state.service.rerun, build_id)
    except SourceUnavailable as exc:
        return _message("Cannot rerun", f"The repository cannot be read: {exc}", build_id, 422)
    except BrokerUnavailable as exc:
        return _message("Cannot rerun", str(exc), build_id, 503)
    if outcome.build_id is None:
        return _message("Not rerun", f"The rerun was not started: {outcome.ignored}", build_id, 200)
    return RedirectResponse(f"/builds/{outcome.build_id}", status_code=303)
