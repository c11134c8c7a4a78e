"""The tests page (`/builds/{id}/tests`): failures first, each case against the previous build.

Everything is server-side: the filter is a GET form (`?status=&change=&q=&page=`), a case's message,
trace and output open with `<details>`, and its history over the branch's recent builds is a strip of
links. See `runner.server.testdiff.tests_view` for what one page reads.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from runner.server.ids import RowId
from runner.server.pages import queries, render
from runner.server.testdiff import CHANGE_FILTERS, STATUS_FILTERS, Filters, tests_view

router = APIRouter(include_in_schema=False)


@router.get("/builds/{build_id}/tests", response_class=HTMLResponse)
def tests_page(
    request: Request,
    build_id: RowId,
    status: str | None = None,
    change: str | None = None,
    q: str | None = None,
    page: int = Query(1, ge=1, le=100_000),
    case: str | None = None,
) -> HTMLResponse:
    build = queries(request).get(build_id)
    if build is None:
        raise HTTPException(404, f"no build {build_id}")
    filters = Filters.parse(status, change, q, page, case)
    view = tests_view(queries(request), build, filters)
    history_strips(view["cases"], view["builds"], build_id)
    for shown in view["cases"]:
        shown["took"] = duration(shown["duration"])
    for suite in view["suites"]:
        suite["took"] = duration(suite["duration"])

    def link(**over: object) -> str:
        query = urlencode(filters.query(**over))
        return f"/builds/{build_id}/tests" + (f"?{query}" if query else "")

    return render(
        "tests.html",
        build=build,
        tests=view,
        filters=filters,
        status_filters=STATUS_FILTERS,
        change_filters=CHANGE_FILTERS,
        link=link,
    )


def history_strips(cases: list[dict[str, Any]], refs: list[Any], current: int) -> None:
    """Give each case its `strip`: one mark per recent build, oldest first, each a link to that build.

    Made here rather than in Jinja because a page of 500 cases has 10,000 marks: the parts that
    depend only on the build or the status are escaped once per page, not once per mark.
    """
    heads = {
        ref.id: (f'href="/builds/{ref.id}/tests?case=', f'title="build {ref.id}: ',
                 ' aria-current="page"' if ref.id == current else "")
        for ref in refs
    }  # fmt: skip
    looks: dict[str | None, tuple[str, str]] = {}
    for case in cases:
        key = case["key"]  # hex digits: nothing to escape
        marks = []
        for ref, status in case["history"]:
            look = looks.get(status)
            if look is None:
                shown = escape(status or "none")
                look = looks[status] = (
                    f'<a role="listitem" data-status="{shown}" ',
                    f'{escape(status or "did not run")}"',
                )
            href, title, here = heads[ref.id]
            marks.append(f'{look[0]}{href}{key}" {title}{look[1]}{here}></a>')
        case["strip"] = Markup("".join(marks))


def duration(seconds: float) -> str:
    """A case's time as the page shows it: `0.42s`, `12s`, `3m 05s`."""
    if seconds < 10:
        return f"{seconds:.2f}s" if seconds < 1 else f"{seconds:.1f}s"
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    return f"{total // 60}m {total % 60:02d}s"
