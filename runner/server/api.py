"""The JSON API of contract.md §3: builds, logs (text and live), tests, artifacts, and the write
endpoints (trigger, cancel, rerun) behind `Authorization: Bearer $RUNNER_API_TOKEN`."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from runner.server.builds import BrokerUnavailable, BuildService, SourceUnavailable
from runner.server.planning import Push
from runner.server.queries import BuildQueries
from runner.server.testdiff import build_tests

router = APIRouter(prefix="/api", tags=["api"])


class TriggerRequest(BaseModel):
    repo_url: str = Field(min_length=1, description="a clone URL: file://, git://, http(s) or ssh")
    ref: str = Field(min_length=1, description="a branch, tag, or full ref name")
    sha: str | None = Field(default=None, description="the commit to build (default: the ref's head)")
    repo: str | None = Field(default=None, description="the repository's name (default: from the URL)")


def require_token(request: Request) -> None:
    token = request.app.state.service.settings.api_token
    if not token:
        raise HTTPException(403, "write endpoints are refused until RUNNER_API_TOKEN is set")
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def _queries(request: Request) -> BuildQueries:
    queries: BuildQueries = request.app.state.queries
    return queries


def _build_or_404(request: Request, build_id: int) -> dict[str, Any]:
    build = _queries(request).get(build_id)
    if build is None:
        raise HTTPException(404, f"no build {build_id}")
    return build


def _job_or_404(request: Request, build_id: int, job: str) -> None:
    if _queries(request).job_by_name(build_id, job) is None:
        raise HTTPException(404, f"build {build_id} has no job {job!r}")


@router.get("/builds")
def list_builds(
    request: Request,
    repo: str | None = None,
    branch: str | None = None,
    status: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> list[dict[str, Any]]:
    return _queries(request).list_builds(repo, branch, status, limit)


@router.get("/builds/{build_id}")
def get_build(request: Request, build_id: int) -> dict[str, Any]:
    return _build_or_404(request, build_id)


@router.get("/builds/{build_id}/tests")
def get_tests(request: Request, build_id: int) -> dict[str, Any]:
    return build_tests(_queries(request), _build_or_404(request, build_id))


@router.get("/builds/{build_id}/jobs/{job}/log", response_class=PlainTextResponse)
def get_log(request: Request, build_id: int, job: str) -> PlainTextResponse:
    _job_or_404(request, build_id, job)
    data = request.app.state.backends.storage.read_log(build_id, job)
    return PlainTextResponse(data.decode("utf-8", errors="replace"))


@router.get("/builds/{build_id}/jobs/{job}/log/stream")
def stream_log(request: Request, build_id: int, job: str) -> StreamingResponse:
    """Server-Sent Events: the live lines from the stream, then the stored log once the job ended."""
    from runner.logs import sse_events

    _job_or_404(request, build_id, job)
    last = request.headers.get("last-event-id")
    backends = request.app.state.backends
    queries = _queries(request)

    def finished() -> bool:
        found = queries.job_by_name(build_id, job)
        return found is None or found.finished_at is not None

    events = sse_events(backends.logs, backends.storage, build_id, job, last, job_finished=finished)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


@router.get("/builds/{build_id}/artifacts/{job}/{path:path}")
def get_artifact(request: Request, build_id: int, job: str, path: str) -> Response:
    from runner.logs import StorageError

    if _queries(request).artifact(build_id, job, path) is None:
        raise HTTPException(404, f"build {build_id} job {job!r} has no artifact {path!r}")
    try:
        stored = request.app.state.backends.storage.open_artifact(build_id, job, path)
    except StorageError:
        raise HTTPException(404, f"artifact {path!r} is no longer stored") from None
    return FileResponse(stored, media_type="application/octet-stream", filename=path.rsplit("/", 1)[-1])


def _service(request: Request) -> BuildService:
    service: BuildService = request.app.state.service
    return service


@router.post("/builds", status_code=202, dependencies=[Depends(require_token)])
async def trigger(request: Request, body: TriggerRequest) -> JSONResponse:
    from runner.sources.gitinfo import repo_name_from_url

    ref = body.ref if body.ref.startswith("refs/") else f"refs/heads/{body.ref}"
    is_tag = ref.startswith("refs/tags/")
    short = ref.removeprefix("refs/tags/").removeprefix("refs/heads/")
    push = Push(
        forge="api", repo=body.repo or repo_name_from_url(body.repo_url), clone_url=body.repo_url,
        ref=ref, sha=(body.sha or "").lower(), branch="" if is_tag else short, tag=short if is_tag else "",
        event="api",
    )  # fmt: skip
    service = _service(request)
    try:
        outcome = await run_in_threadpool(service.trigger, push, None, False)
    except SourceUnavailable as exc:
        raise HTTPException(422, f"cannot read {body.repo_url} at {body.ref}: {exc}") from None
    except BrokerUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    if outcome.build_id is None:
        return JSONResponse({"ignored": outcome.ignored}, status_code=200)
    return JSONResponse({"build_id": outcome.build_id}, status_code=202)


@router.post("/builds/{build_id}/cancel", dependencies=[Depends(require_token)])
async def cancel(request: Request, build_id: int) -> dict[str, Any]:
    build = _build_or_404(request, build_id)
    done = await run_in_threadpool(_service(request).cancel, build_id, "canceled by a user")
    if not done:
        raise HTTPException(409, f"build {build_id} has already finished ({build['status']})")
    return {"build_id": build_id, "canceled": True}


@router.post("/builds/{build_id}/rerun", status_code=202, dependencies=[Depends(require_token)])
async def rerun(request: Request, build_id: int) -> JSONResponse:
    _build_or_404(request, build_id)
    try:
        outcome = await run_in_threadpool(_service(request).rerun, build_id)
    except SourceUnavailable as exc:
        raise HTTPException(422, f"cannot read the repository: {exc}") from None
    except BrokerUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    if outcome.build_id is None:
        return JSONResponse({"ignored": outcome.ignored}, status_code=200)
    return JSONResponse({"build_id": outcome.build_id}, status_code=202)
