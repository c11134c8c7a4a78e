"""The tests page (`/builds/{id}/tests`): failures first, each case against the previous build."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from runner.server.pages import queries, render
from runner.server.testdiff import build_tests

router = APIRouter(include_in_schema=False)


@router.get("/builds/{build_id}/tests", response_class=HTMLResponse)
def tests_page(request: Request, build_id: int) -> HTMLResponse:
    build = queries(request).get(build_id)
    if build is None:
        raise HTTPException(404, f"no build {build_id}")
    return render("tests.html", build=build, tests=build_tests(queries(request), build))
