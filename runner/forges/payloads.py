"""Webhook bodies of GitHub, GitLab and Gitea/Forgejo turned into PushEvent, Ping or Ignored."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from runner.forges.events import (
    ZERO_SHA,
    Forge,
    Ignored,
    PayloadError,
    Ping,
    PushEvent,
    check_forge,
    header,
)

_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")

DELIVERY_HEADERS: dict[Forge, tuple[str, ...]] = {
    "github": ("X-GitHub-Delivery",),
    "gitlab": ("X-Gitlab-Event-UUID", "Idempotency-Key", "X-Gitlab-Webhook-UUID"),
    "gitea": ("X-Gitea-Delivery", "X-Forgejo-Delivery", "X-Gogs-Delivery"),
}
EVENT_HEADERS: dict[Forge, tuple[str, ...]] = {
    "github": ("X-GitHub-Event",),
    "gitlab": ("X-Gitlab-Event",),
    "gitea": ("X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event", "X-GitHub-Event"),
}


def delivery_id(forge: Forge, headers: Mapping[str, str], body: bytes) -> str:
    """The forge's delivery id, else `sha256:<hex of the body>` so a re-sent body still dedupes."""
    for name in DELIVERY_HEADERS[forge]:
        value = (header(headers, name) or "").strip()
        if value:
            return value[:200]
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _first_header(headers: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = header(headers, name)
        if value and value.strip():
            return value.strip()
    return None


def _load(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The JSON object of a body, also from GitHub's form encoding (`payload=<json>`)."""
    content_type = (header(headers, "Content-Type") or "").lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PayloadError(f"body is not UTF-8 (byte {error.start})") from None
    if content_type.startswith("application/x-www-form-urlencoded"):
        values = parse_qs(text).get("payload")
        if not values:
            raise PayloadError("form-encoded body has no 'payload' field")
        text = values[0]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise PayloadError(f"body is not JSON: {error.msg} at {where}") from None
    except RecursionError:
        raise PayloadError("body is not JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise PayloadError(f"body is JSON but not an object (got {type(data).__name__})")
    return data


def _obj(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _text(data: Mapping[str, Any], *keys: str) -> str | None:
    """The first of `keys` that holds a non-empty string."""
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _required(value: str | None, what: str) -> str:
    if value is None:
        raise PayloadError(f"payload has no {what}")
    return value


def _sha(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _SHA.fullmatch(value.lower()):
        raise PayloadError(f"payload field {what!r} is missing or not a commit sha")
    return value.lower()


def _head_commit(data: Mapping[str, Any], after: str) -> dict[str, Any]:
    """The commit `after` points at: `head_commit`, else the entry of `commits` with that id."""
    head = _obj(data, "head_commit")
    if head:
        return head
    commits = data.get("commits")
    if isinstance(commits, list):
        for commit in commits:
            if isinstance(commit, dict) and commit.get("id") == after:
                return commit
    return {}


def _push(forge: Forge, delivery: str, data: dict[str, Any], repo: str, clone_url: str) -> PushEvent:
    ref = _required(_text(data, "ref"), "'ref'")
    if not ref.startswith("refs/"):
        raise PayloadError(f"payload field 'ref' is not a full ref name: {ref[:100]!r}")
    after = _sha(data.get("after"), "after")
    before_raw = data.get("before")
    before = _sha(before_raw, "before") if before_raw is not None else ZERO_SHA
    deleted = data.get("deleted") is True or set(after) == {"0"}
    created = data.get("created") is True or set(before) == {"0"}
    head = _head_commit(data, after)
    sha = after
    if not deleted:
        # A tag's `after` may be the annotated tag object; prefer the commit the payload names.
        checkout = data.get("checkout_sha")
        if isinstance(checkout, str) and _SHA.fullmatch(checkout.lower()):
            sha = checkout.lower()
        elif isinstance(head.get("id"), str) and _SHA.fullmatch(head["id"].lower()):
            sha = head["id"].lower()
    is_tag = ref.startswith("refs/tags/")
    short = ref.removeprefix("refs/tags/") if is_tag else ref.removeprefix("refs/heads/")
    author = (
        _text(_obj(head, "author"), "name", "username")
        or _text(_obj(data, "pusher"), "name", "login", "username")
        or _text(data, "user_name", "user_username")
        or ""
    )
    return PushEvent(
        forge=forge,
        delivery_id=delivery,
        repo=repo,
        clone_url=clone_url,
        ref=ref,
        branch=None if is_tag else short,
        tag=short if is_tag else None,
        sha=sha,
        before=before,
        deleted=deleted,
        created=created,
        message=_text(head, "message") or "",
        author=author,
        event="tag" if is_tag else "push",
    )


def _github_like_repo(data: dict[str, Any]) -> tuple[str, str]:
    repository = _obj(data, "repository")
    repo = _required(_text(repository, "full_name"), "'repository.full_name'")
    clone = _text(repository, "clone_url", "git_url", "ssh_url", "html_url")
    return repo, _required(clone, "clone URL in 'repository'")


def _gitlab_repo(data: dict[str, Any]) -> tuple[str, str]:
    project = _obj(data, "project")
    repository = _obj(data, "repository")
    repo = _text(project, "path_with_namespace")
    if repo is None:  # old payloads without `project`: the path of the homepage URL
        homepage = _text(repository, "homepage")
        if homepage and "://" in homepage:
            repo = homepage.split("://", 1)[1].partition("/")[2].strip("/") or None
    clone = _text(project, "git_http_url", "http_url", "git_ssh_url") or _text(
        repository, "git_http_url", "git_ssh_url", "url"
    )
    return _required(repo, "'project.path_with_namespace'"), _required(clone, "clone URL in 'project'")


def parse_event(forge: str, headers: Mapping[str, str], body: bytes) -> PushEvent | Ping | Ignored:
    """Understand one webhook delivery; raise PayloadError (one line) when the body is malformed.

    Call it only after `verify_signature` accepted the body. Events other than pushes and pings are
    `Ignored` with a reason, whatever their body looks like beyond being a JSON object.
    """
    name = check_forge(forge)
    delivery = delivery_id(name, headers, body)
    event = _first_header(headers, EVENT_HEADERS[name])
    data = _load(headers, body)
    if name == "github":
        if event is None:
            raise PayloadError("missing X-GitHub-Event header")
        if event == "ping":
            return Ping(name, delivery, _text(_obj(data, "repository"), "full_name"))
        if event != "push":
            return Ignored(name, delivery, f"event {event!r} is not built")
        return _push(name, delivery, data, *_github_like_repo(data))
    if name == "gitlab":
        kind = event or {"push": "Push Hook", "tag_push": "Tag Push Hook"}.get(str(data.get("object_kind")))
        if kind is None:
            raise PayloadError("missing X-Gitlab-Event header")
        if kind not in ("Push Hook", "Tag Push Hook"):
            return Ignored(name, delivery, f"event {kind!r} is not built")
        return _push(name, delivery, data, *_gitlab_repo(data))
    if event is None:
        raise PayloadError("missing X-Gitea-Event header")
    if event != "push":
        return Ignored(name, delivery, f"event {event!r} is not built")
    return _push(name, delivery, data, *_github_like_repo(data))
