"""The tests page (`/builds/{id}/tests`): failures first, each case against the previous build.

Everything is server-side: the filter is a GET form (`?status=&change=&q=&page=`), a case's message,
trace and output open with `<details>`, and its history over the branch's recent builds is a strip of
links. See `runner.server.testdiff.tests_view` for what one page reads.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from runner.server.pages import queries, render
from runner.server.testdiff import CHANGE_FILTERS, STATUS_FILTERS, Filters, tests_view

router = APIRouter(include_in_schema=False)


@router.get("/builds/{build_id}/tests", response_class=HTMLResponse)
def tests_page(
    request: Request,
    build_id: int,
    status: str | None = None,
    change: str | None = None,
    q: str | None = None,
    page: int = Query(1, ge=1, le=100_000),
) -> HTMLResponse:
    build = queries(request).get(build_id)
    if build is None:
        raise HTTPException(404, f"no build {build_id}")
    filters = Filters.parse(status, change, q, page)
    view = tests_view(queries(request), build, filters)

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
