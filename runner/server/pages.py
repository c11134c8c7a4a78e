"""The results pages (`/`, `/builds/{id}`, `/builds/{id}/tests`): plain Jinja over the JSON API's data."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from runner.server.queries import BuildQueries
from runner.server.testdiff import build_tests

# runner/templates links to the repository's templates/; a wheel carries a copy
TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "server"
router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))


def render(name: str, **values: Any) -> HTMLResponse:
    return HTMLResponse(_environment().get_template(name).render(**values))


def _queries(request: Request) -> BuildQueries:
    queries: BuildQueries = request.app.state.queries
    return queries


@router.get("/", response_class=HTMLResponse)
def index(request: Request, repo: str | None = None, branch: str | None = None) -> HTMLResponse:
    return render(
        "index.html", builds=_queries(request).list_builds(repo, branch, None, 100), repo=repo, branch=branch
    )


@router.get("/builds/{build_id}", response_class=HTMLResponse)
def build_page(request: Request, build_id: int) -> HTMLResponse:
    build = _queries(request).get(build_id)
    if build is None:
        raise HTTPException(404, f"no build {build_id}")
    return render("build.html", build=build)


@router.get("/builds/{build_id}/tests", response_class=HTMLResponse)
def tests_page(request: Request, build_id: int) -> HTMLResponse:
    build = _queries(request).get(build_id)
    if build is None:
        raise HTTPException(404, f"no build {build_id}")
    return render("tests.html", build=build, tests=build_tests(_queries(request), build))
