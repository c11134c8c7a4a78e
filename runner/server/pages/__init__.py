"""The results pages: server-rendered Jinja templates from `templates/server/`, a little plain JavaScript.

Each page lives in a module of its own (`dashboard`, `build`, `tests`); this module holds what they
share: the Jinja environment, `render`, and the `/static/` files (CSS and JavaScript, no build step).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from runner.server.queries import BuildQueries

# runner/templates links to the repository's templates/; a wheel carries a copy
TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "server"
STATIC = TEMPLATES / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@lru_cache(maxsize=1)
def environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))


def render(name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(environment().get_template(name).render(**values), status_code=status_code)


def queries(request: Request) -> BuildQueries:
    found: BuildQueries = request.app.state.queries
    return found


static_router = APIRouter(include_in_schema=False)


@static_router.get("/static/{name}")
def static_file(name: str) -> FileResponse:
    """CSS and JavaScript of the pages: flat names only, from templates/server/static/."""
    path = STATIC / name
    kind = STATIC_TYPES.get(path.suffix)
    if kind is None or "/" in name or name.startswith(".") or not path.is_file():
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(path, media_type=kind, headers={"Cache-Control": "public, max-age=300"})


def _router() -> APIRouter:
    from runner.server.pages import build, dashboard, tests

    router = APIRouter(include_in_schema=False)
    router.include_router(static_router)
    router.include_router(dashboard.router)
    router.include_router(build.router)
    router.include_router(tests.router)
    return router


router = _router()
