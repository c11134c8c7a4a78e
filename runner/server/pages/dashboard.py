"""The dashboard (`/`): each repository's branches with their latest build and trend, and the queue;
and the build list (`/builds`), filtered by a GET form and paged by build id."""

from __future__ import annotations

import time
from html import escape
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from runner.server.dashboard_queries import STATUSES, TREND, DashboardQueries, TrendPoint
from runner.server.pages import render

router = APIRouter(include_in_schema=False)

TREND_WIDTH, TREND_HEIGHT = 120, 28  # px of the trend chart


def _queries(request: Request) -> DashboardQueries:
    return DashboardQueries(request.app.state.queries.sessions)


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def ago(stamp: float | None, now: float | None = None) -> str:
    """ "3 min ago" for a past epoch time."""
    if stamp is None:
        return "—"
    delta = max(0.0, (now or time.time()) - stamp)
    if delta < 45:
        return "just now"
    for size, unit in (
        (86400 * 365, "year"),
        (86400 * 30, "month"),
        (86400, "day"),
        (3600, "hour"),
        (60, "min"),
    ):
        if delta >= size:
            count = round(delta / size) if unit == "min" else int(delta // size)
            return f"{count} {unit}{'s' if count != 1 and unit != 'min' else ''} ago"
    return "just now"


def stamp_iso(stamp: float | None) -> str:
    return "" if stamp is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def when(stamp: float | None) -> Markup:
    """A <time> element: relative text, the exact UTC time as its title."""
    if stamp is None:
        return Markup("—")
    iso = stamp_iso(stamp)
    exact = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, exact, ago(stamp))


def trend_svg(points: list[TrendPoint], label: str) -> Markup:
    """Bars of the builds' durations, coloured (and titled) by status, with the test count as a line.

    Oldest build on the left, the latest at the right edge; a branch with few builds has few bars.
    Every bar has its own <title> (build, status, duration, tests) and the chart a summary title, so
    the colours are never the only way to read it.
    """
    count = len(points)
    width, height = TREND_WIDTH, TREND_HEIGHT
    slot = width / max(TREND, count)  # a fixed slot per build, the latest at the right edge
    gap = 1.5
    first = width - count * slot
    longest = max((p.duration or 0.0 for p in points), default=0.0) or 1.0
    most_tests = max((p.tests_total for p in points), default=0)
    bars, line = [], []
    for i, point in enumerate(points):  # f-strings: a dashboard draws thousands of bars
        tall = max(2.0, (point.duration or 0.0) / longest * (height - 2))
        x = first + i * slot + gap / 2
        tests = f", {point.tests_total} tests ({point.tests_failed} failing)" if point.tests_total else ""
        tip = escape(f"#{point.build_id} {point.status}, {human_duration(point.duration)}{tests}")
        bars.append(
            f'<rect class="bar bar-{escape(point.status)}" data-build="{point.build_id}" x="{x:.1f}" '
            f'y="{height - tall:.1f}" width="{slot - gap:.1f}" height="{tall:.1f}" rx="1">'
            f"<title>{tip}</title></rect>"
        )
        if most_tests:
            y = height - 1 - point.tests_total / most_tests * (height - 4)
            line.append(f"{x + (slot - gap) / 2:.1f},{y:.1f}")
    passed = sum(1 for p in points if p.status == "passed")
    failing = sum(1 for p in points if p.status in ("failed", "error"))
    durations = [p.duration for p in points if p.duration is not None]
    summary = f"{label}: last {count} builds, {passed} passed, {failing} failed"
    if durations:
        summary += f"; duration {human_duration(min(durations))} to {human_duration(max(durations))}"
    if most_tests:
        summary += f"; tests {points[0].tests_total} to {points[-1].tests_total}"
    polyline = f'<polyline class="tests" points="{" ".join(line)}"/>' if len(line) > 1 else ""
    return Markup(
        f'<svg class="trend" data-testid="trend" data-points="{count}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img"><title>{escape(summary)}</title>'
        f"{''.join(bars)}{polyline}</svg>"
    )


@router.get("/", response_class=HTMLResponse)
def index(request: Request, repo: str | None = None) -> HTMLResponse:
    """Every repository, or only `?repo=` (the queue always shows every job)."""
    found = _queries(request)
    groups = found.branches((repo or "").strip() or None)
    queue, queued_total = found.queue()
    return render(
        "index.html",
        repo=(repo or "").strip(),
        groups=groups,
        branch_count=sum(len(g.branches) for g in groups),
        queue=queue,
        queue_total=queued_total,
        trend_svg=trend_svg,
        when=when,
        duration=human_duration,
        now=stamp_iso(time.time()),
    )


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def page_url(filters: dict[str, str], **bound: int) -> str:
    """/builds with the current filters and a page bound (`before=` or `after=`)."""
    values: dict[str, Any] = {k: v for k, v in filters.items() if v}
    values.update(bound)
    return "/builds" + (f"?{urlencode(values)}" if values else "")


@router.get("/builds", response_class=HTMLResponse)
def build_list(
    request: Request,
    repo: str | None = None,
    branch: str | None = None,
    status: str | None = None,
    before: str | None = None,
    after: str | None = None,
) -> HTMLResponse:
    filters = {
        "repo": (repo or "").strip(),
        "branch": (branch or "").strip(),
        "status": (status or "").strip(),
    }
    found = _queries(request)
    page = found.page(
        filters["repo"] or None,
        filters["branch"] or None,
        filters["status"] or None,
        before=_int(before),
        after=_int(after),
    )
    return render(
        "builds.html",
        page=page,
        filters=filters,
        filtered=any(filters.values()),
        paged=_int(before) is not None or _int(after) is not None,
        statuses=STATUSES,
        repos=found.repos(),
        branches=found.branch_names(filters["repo"] or None),
        next_url=page_url(filters, before=page.older) if page.older is not None else None,
        prev_url=page_url(filters, after=page.newer) if page.newer is not None else None,
        first_url=page_url(filters),
        when=when,
        duration=human_duration,
    )
