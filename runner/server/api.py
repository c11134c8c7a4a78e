"""The JSON API of contract.md §3: builds, logs (text and live), tests, artifacts, and the write
endpoints (trigger, cancel, rerun) behind `Authorization: Bearer $RUNNER_API_TOKEN`."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from runner.server.builds import BrokerUnavailable, BuildService, SourceUnavailable
from runner.server.ids import RowId
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
def get_build(request: Request, build_id: RowId) -> dict[str, Any]:
    return _build_or_404(request, build_id)


@router.get("/builds/{build_id}/tests")
def get_tests(request: Request, build_id: RowId) -> dict[str, Any]:
    """Every case with its change against the previous build; trace and output are per case (below)."""
    return build_tests(_queries(request), _build_or_404(request, build_id))


@router.get("/builds/{build_id}/tests/{case_id}")
def get_test_case(request: Request, build_id: RowId, case_id: RowId) -> dict[str, Any]:
    """One case in full: its message, trace and output as stored."""
    from runner.server.testqueries import TestQueries

    found = TestQueries(_queries(request).sessions).case(build_id, case_id)
    if found is None:
        raise HTTPException(404, f"build {build_id} has no test case {case_id}")
    job, case = found
    fields = ("id", "suite", "classname", "name", "status", "flaky", "duration", "file", "line")
    return {"job": job, **{f: getattr(case, f) for f in fields},
            "message": case.message, "trace": case.trace, "output": case.output}  # fmt: skip


# Job names hold `/`, spaces and matrix suffixes: `{job:path}` takes the percent-decoded name whole.
LOG_CHUNK = 256 * 1024


def log_filename(build_id: int, job: str) -> str:
    """`build-7-test (py: 3.12).log` as an ASCII `filename` and a UTF-8 `filename*` (RFC 6266)."""
    from urllib.parse import quote

    name = f"build-{build_id}-{job.replace('/', '_')}.log"
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get("/builds/{build_id}/jobs/{job:path}/log", response_class=PlainTextResponse)
def get_log(request: Request, build_id: RowId, job: str, download: bool = False) -> StreamingResponse:
    """The stored log as text, streamed in chunks up to its size when asked (it may still grow).

    `?download=1` answers `Content-Disposition: attachment` (the page's raw download link).
    """
    _job_or_404(request, build_id, job)
    storage = request.app.state.backends.storage
    log_path = getattr(storage, "log_path", None)
    size: int | None = None
    if callable(log_path):
        try:
            size = log_path(build_id, job).stat().st_size
        except FileNotFoundError:
            size = 0

    def chunks() -> Iterator[bytes]:
        offset = 0
        while size is None or offset < size:
            want = LOG_CHUNK if size is None else min(LOG_CHUNK, size - offset)
            data = storage.read_log(build_id, job, offset, want)
            if not data:
                return
            offset += len(data)
            yield data

    disposition = ("attachment; " if download else "inline; ") + log_filename(build_id, job)
    headers = {"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"}
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(chunks(), media_type="text/plain; charset=utf-8", headers=headers)


@router.get("/builds/{build_id}/jobs/{job:path}/log/lines")
def log_lines(
    request: Request,
    build_id: RowId,
    job: str,
    start: int = Query(1, ge=1, description="the first line to return (1-based)"),
    count: int = Query(1000, ge=0, le=10000, description="how many lines from `start`"),
    tail: int | None = Query(None, ge=0, le=10000, description="the last `tail` lines instead"),
) -> dict[str, Any]:
    """A page of the stored log: `{total, start, lines, complete}`, read through the line index.

    `lines[i]` is line `start + i`; a page beyond the end is empty. The live stream continues from
    `start + len(lines) - 1` (pass it as `?after=` to `.../log/stream`).
    """
    from runner.logs.lines import read_lines, tail_lines

    _job_or_404(request, build_id, job)
    storage = request.app.state.backends.storage
    if tail is not None:
        return tail_lines(storage, build_id, job, tail).as_json()
    return read_lines(storage, build_id, job, start, count).as_json()


@router.get("/builds/{build_id}/jobs/{job:path}/log/stream")
def stream_log(
    request: Request,
    build_id: RowId,
    job: str,
    after: int | None = Query(
        None, ge=0, description="resume after this line (EventSource cannot send Last-Event-ID at first)"
    ),
) -> StreamingResponse:
    """Server-Sent Events: the live lines from the stream, then the stored log once the job ended.

    A reconnecting client's `Last-Event-ID` header wins over `?after=`.
    """
    from runner.logs import sse_events

    _job_or_404(request, build_id, job)
    last = request.headers.get("last-event-id") or (None if after is None else str(after))
    backends = request.app.state.backends
    queries = _queries(request)

    def finished() -> bool:
        found = queries.job_by_name(build_id, job)
        return found is None or found.finished_at is not None

    events = sse_events(backends.logs, backends.storage, build_id, job, last, job_finished=finished)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


@router.get("/builds/{build_id}/artifacts/{job_and_path:path}")
def get_artifact(request: Request, build_id: RowId, job_and_path: str) -> Response:
    """`{job}/{path}`; a job name may hold `/` itself, so each split is tried, the shortest job first."""
    from runner.logs import StorageError

    job, path = job_and_path, ""
    for i, char in enumerate(job_and_path):
        if char == "/" and _queries(request).artifact(build_id, job_and_path[:i], job_and_path[i + 1 :]):
            job, path = job_and_path[:i], job_and_path[i + 1 :]
            break
    else:
        raise HTTPException(404, f"build {build_id} has no artifact {job_and_path!r}")
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
async def cancel(request: Request, build_id: RowId) -> dict[str, Any]:
    build = _build_or_404(request, build_id)
    done = await run_in_threadpool(_service(request).cancel, build_id, "canceled by a user")
    if not done:
        raise HTTPException(409, f"build {build_id} has already finished ({build['status']})")
    return {"build_id": build_id, "canceled": True}


@router.post("/builds/{build_id}/rerun", status_code=202, dependencies=[Depends(require_token)])
async def rerun(request: Request, build_id: RowId) -> JSONResponse:
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
