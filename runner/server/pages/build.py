"""The build page (`/builds/{id}`): the build's jobs, their steps, phases and live logs."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from runner.server.pages import queries, render

router = APIRouter(include_in_schema=False)


@router.get("/builds/{build_id}", response_class=HTMLResponse)
def build_page(request: Request, build_id: int) -> HTMLResponse:
    build = queries(request).get(build_id)
    if build is None:
        raise HTTPException(404, f"no build {build_id}")
    return render("build.html", build=build)
