"""The dashboard (`/`): repositories and branches with their latest builds, and the build list."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from runner.server.pages import queries, render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index(request: Request, repo: str | None = None, branch: str | None = None) -> HTMLResponse:
    return render(
        "index.html", builds=queries(request).list_builds(repo, branch, None, 100), repo=repo, branch=branch
    )
