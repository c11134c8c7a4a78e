"""`POST /hooks/{github,gitlab,gitea}`: the push webhooks of contract.md §3.

Order of checks: a secret must be configured (else 401), the body is read up to the limit (413),
the signature is checked in constant time (401), the payload parsed (400), its repository URL must be
remote (400: a `file://` URL or a path would let whoever holds the webhook secret build any repository
on the workers' disks, unless RUNNER_ALLOW_LOCAL_REPOS=1); then pings, deletions,
`[skip ci]`, repeated deliveries and `on:` filters are answered 200 `{"ignored": reason}`, and a
build is answered 202 `{"build_id": N}` once it is committed and its first jobs are enqueued.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from runner.server.builds import BrokerUnavailable, BuildService, SourceUnavailable
from runner.server.planning import Push

FORGES = ("github", "gitlab", "gitea")
REMOTE_SCHEMES = ("http", "https", "ssh", "git", "git+ssh", "ssh+git")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)")
_SCP = re.compile(r"^(?:[^@/:]+@)?([^@/:]+):")  # git's scp-like syntax: [user@]host:path
router = APIRouter()


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused as soon as it passes `limit` bytes (announced or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def local_repo_refusal(url: str) -> str | None:
    """Why a webhook may not build `url` (a local path, `file://`, `ext::`...), or None for a remote URL."""
    hint = "webhooks build http(s), ssh and git URLs only (RUNNER_ALLOW_LOCAL_REPOS=1 allows local ones)"
    url = url.strip()
    scheme = _SCHEME.match(url)
    if scheme is not None:
        name, authority = scheme.group(1).lower(), scheme.group(2)
        host = authority.rpartition("@")[2]
        if name not in REMOTE_SCHEMES:
            return f"the repository URL {url!r} uses {name}://: {hint}"
        if not host or host.startswith("-"):
            return f"the repository URL {url!r} names no host: {hint}"
        return None
    scp = _SCP.match(url)
    if scp is not None and "::" not in url and not scp.group(1).startswith("-"):
        return None
    return f"the repository URL {url!r} is not a remote URL: {hint}"


def _ignored(reason: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"ignored": reason, **extra}, status_code=200)


def _repo_name(event: Any) -> str:
    return str(getattr(event, "repo", "") or "")


def handle_push(service: BuildService, forge: str, event: Any) -> JSONResponse:
    """A parsed push event to an answer (runs in a worker thread: it fetches and writes)."""
    from runner.forges import skip_requested

    delivery = (forge, str(event.delivery_id)) if getattr(event, "delivery_id", "") else None
    if delivery is not None:
        seen, build_id = service.store.delivery_build(*delivery)
        if seen:
            return _ignored("repeated delivery", build_id=build_id)
    if getattr(event, "deleted", False):
        if delivery is not None:
            service.store.record_delivery(*delivery, None)
        return _ignored("branch deletion" if not getattr(event, "tag", "") else "tag deletion")
    if skip_requested(getattr(event, "message", "") or ""):
        if delivery is not None:
            service.store.record_delivery(*delivery, None)
        return _ignored("skip ci")
    push = Push(
        forge=forge, repo=_repo_name(event), clone_url=str(event.clone_url), ref=str(event.ref),
        sha=str(event.sha), branch=str(getattr(event, "branch", "") or ""),
        tag=str(getattr(event, "tag", "") or ""), message=str(getattr(event, "message", "") or ""),
        author=str(getattr(event, "author", "") or ""), event="tag" if getattr(event, "tag", "") else "push",
    )  # fmt: skip
    try:
        outcome = service.trigger(push, delivery)
    except SourceUnavailable as exc:
        return JSONResponse({"detail": f"cannot read the repository: {exc}"}, status_code=502)
    except BrokerUnavailable as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503)
    if outcome.ignored:
        extra = {"build_id": outcome.build_id} if outcome.build_id is not None else {}
        return _ignored(outcome.ignored, **extra)
    return JSONResponse({"build_id": outcome.build_id}, status_code=202)


@router.post("/hooks/{forge}", tags=["webhooks"])
async def webhook(forge: str, request: Request) -> JSONResponse:
    """A forge's push webhook (GitHub, GitLab, Gitea/Forgejo)."""
    if forge not in FORGES:
        raise HTTPException(404, f"unknown forge {forge!r} (github, gitlab, gitea)")
    service: BuildService = request.app.state.service
    secret = service.settings.webhook_secret
    if not secret:
        return JSONResponse(
            {"detail": "webhooks are refused until RUNNER_WEBHOOK_SECRET is set"}, status_code=401
        )
    try:
        body = await read_body(request, service.settings.body_limit)
    except BodyTooLarge:
        return JSONResponse(
            {"detail": f"the body is over the limit of {service.settings.body_limit} bytes"}, status_code=413
        )
    from runner.forges import PayloadError, Ping, PushEvent, parse_event, verify_signature

    if not verify_signature(forge, secret, body, request.headers):
        return JSONResponse({"detail": "bad or missing signature"}, status_code=401)
    try:
        event = parse_event(forge, request.headers, body)
    except PayloadError as exc:
        return JSONResponse({"detail": f"malformed payload: {exc}"}, status_code=400)
    if isinstance(event, Ping):
        return _ignored("ping")
    if not isinstance(event, PushEvent):
        return _ignored(str(getattr(event, "reason", "") or "not a push event"))
    if not service.settings.allow_local_repos:
        refusal = local_repo_refusal(str(event.clone_url))
        if refusal is not None:
            return JSONResponse({"detail": refusal}, status_code=400)
    return await run_in_threadpool(handle_push, service, forge, event)
