"""Webhook payloads: every stored real payload, small payloads of our own, and malformed bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from forge_fixtures import all_shared, shared_payload

from runner.forges import Ignored, PayloadError, Ping, PushEvent, parse_event

ZERO = "0" * 40

GH = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1", "Content-Type": "application/json"}
GL_PUSH = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "u-1"}
GL_TAG = {"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Event-UUID": "u-2"}
GT = {"X-Gitea-Event": "push", "X-Gitea-Delivery": "g-1"}

# What each stored payload must become; values read off the files by hand (see SOURCES.md).
EXPECTED: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "github/push-branch-update.json": (GH, dict(
        repo="Codertocat/Hello-World", clone_url="https://github.com/Codertocat/Hello-World.git",
        ref="refs/heads/master", branch="master", tag=None, event="push", deleted=False, created=False,
        sha="199eddf46df50de8d02e99bf1c5fdb4101338224", before="a10867b14bb761a232cd80139fbd4c0d33264240",
        message="Update README", author="Codertocat")),
    "github/push-new-branch.json": (GH, dict(
        repo="Codertocat/Hello-World", ref="refs/heads/master", branch="master", event="push",
        sha="6113728f27ae82c7b1a177c8d03f9e96e0adf246", before=ZERO, created=True, deleted=False,
        message="Initial commit")),
    "github/push-no-username-committer.json": (GH, dict(
        repo="Codertocat/Hello-World", branch="master", created=True, deleted=False,
        sha="6113728f27ae82c7b1a177c8d03f9e96e0adf246")),
    "github/push-branch-deleted.json": (GH, dict(
        repo="bradrydzewski/drone-test-go", ref="refs/heads/feature-branch", branch="feature-branch",
        deleted=True, sha=ZERO, before="d2b75aa7797ec26b088fa2dd527e9d2c052fcedd", event="push",
        author="bradrydzewski")),
    "github/push-tag-created.json": (GH, dict(
        repo="bradrydzewski/drone-test-go", ref="refs/tags/v0.0.1", tag="v0.0.1", branch=None,
        event="tag", created=True, deleted=False, sha="d2b75aa7797ec26b088fa2dd527e9d2c052fcedd",
        message="Update .drone.yml")),
    "github/push-tag-created-ghes.json": (GH, dict(
        repo="Codertocat/Hello-World", clone_url="https://octocoders.github.io/Codertocat/Hello-World.git",
        tag="simple-tag", event="tag", sha="6113728f27ae82c7b1a177c8d03f9e96e0adf246", deleted=False)),
    "github/push-tag-deleted.json": (GH, dict(
        repo="Codertocat/Hello-World", tag="simple-tag", event="tag", deleted=True, sha=ZERO, message="")),
    "github/push-with-organization-tag-deleted.json": (GH, dict(
        repo="Codertocat/Hello-World", tag="simple-tag", event="tag", deleted=True)),
    "gitlab/push.json": (GL_PUSH, dict(
        repo="mike/diaspora", clone_url="http://example.com/mike/diaspora.git", ref="refs/heads/master",
        branch="master", event="push", deleted=False, sha="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        before="95790bf891e76fee5e1747ab589903a6a1f80f22", author="GitLab dev user")),
    "gitlab/tag_push.json": (GL_TAG, dict(
        repo="jsmith/example", clone_url="http://example.com/jsmith/example.git", ref="refs/tags/v1.0.0",
        tag="v1.0.0", branch=None, event="tag", created=True, deleted=False,
        sha="82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", author="John Smith")),
    "gitlab/push-branch-deleted.json": (GL_PUSH, dict(
        repo="gitlab-org/hello-world", clone_url="https://gitlab.com/gitlab-org/hello-world.git",
        branch="feature", deleted=True, sha=ZERO, author="Sid Sijbrandij")),
    "gitea/push.json": (GT, dict(
        repo="gitea/webhooks", clone_url="http://localhost:3000/gitea/webhooks.git", ref="refs/heads/develop",
        branch="develop", event="push", deleted=False, created=False,
        sha="bffeb74224043ba2feb48d137756c8a9331c449a", message="Webhooks Yay!", author="Gitea")),
    "gitea/push-new-branch.json": (GT, dict(
        repo="example/example", clone_url="http://localhost:3000/example/example.git", branch="master",
        created=True, sha="67b56589a45103f891bdee7c0546e5d40bc02001", before=ZERO)),
}  # fmt: skip
NOT_PUSHES = {
    "github/ping-default.json": ({"X-GitHub-Event": "ping", "X-GitHub-Delivery": "p"}, Ping),
    "github/ping-with-app_id.json": ({"X-GitHub-Event": "ping", "X-GitHub-Delivery": "p"}, Ping),
    "github/pull_request-opened.json": (
        {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "p"},
        Ignored,
    ),
}


def test_every_shared_payload_has_an_expectation() -> None:
    stored = all_shared()
    if not stored:
        pytest.skip("shared webhook fixtures not present beside the repository")
    assert sorted(stored) == sorted([*EXPECTED, *NOT_PUSHES])


@pytest.mark.parametrize("relpath", sorted(EXPECTED))
def test_shared_push_payloads(relpath: str) -> None:
    headers, expected = EXPECTED[relpath]
    body = shared_payload(relpath)
    event = parse_event(relpath.split("/")[0], headers, body)
    assert isinstance(event, PushEvent)
    assert event.forge == relpath.split("/")[0]
    assert event.delivery_id == next(v for k, v in headers.items() if "UUID" in k or "Delivery" in k)
    for field, value in expected.items():
        assert getattr(event, field) == value, field


@pytest.mark.parametrize("relpath", sorted(NOT_PUSHES))
def test_shared_non_push_payloads(relpath: str) -> None:
    headers, kind = NOT_PUSHES[relpath]
    event = parse_event("github", headers, shared_payload(relpath))
    assert isinstance(event, kind)
    if isinstance(event, Ping):
        assert event.repo == "Octocoders/Hello-World"
    if isinstance(event, Ignored):
        assert "pull_request" in event.reason


def _github(**fields: Any) -> bytes:
    payload: dict[str, Any] = {
        "ref": "refs/heads/feature/x",
        "before": "a" * 40,
        "after": "b" * 40,
        "repository": {"full_name": "me/proj", "clone_url": "file:///srv/proj.git"},
        "head_commit": {"id": "b" * 40, "message": "work [skip ci]", "author": {"name": "Me"}},
    }
    payload.update(fields)
    return json.dumps(payload).encode()


def test_own_github_payload_and_delivery_hash_when_header_absent() -> None:
    body = _github()
    event = parse_event("github", {"x-github-event": "push"}, body)
    assert isinstance(event, PushEvent)
    assert event.branch == "feature/x" and event.sha == "b" * 40 and event.message == "work [skip ci]"
    assert event.delivery_id.startswith("sha256:") and len(event.delivery_id) == 71
    again = parse_event("github", {"X-GitHub-Event": "push"}, body)
    assert isinstance(again, PushEvent) and again.delivery_id == event.delivery_id
    other = parse_event("github", {"X-GitHub-Event": "push"}, _github(after="c" * 40))
    assert isinstance(other, PushEvent) and other.delivery_id != event.delivery_id


def test_github_form_encoded_payload() -> None:
    from urllib.parse import urlencode

    body = urlencode({"payload": _github().decode()}).encode()
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded"}
    event = parse_event("github", headers, body)
    assert isinstance(event, PushEvent) and event.repo == "me/proj"


def test_gitlab_annotated_tag_builds_the_commit_not_the_tag_object() -> None:
    body = json.dumps({
        "object_kind": "tag_push", "ref": "refs/tags/v2", "before": ZERO, "after": "1" * 40,
        "checkout_sha": "2" * 40, "project": {"path_with_namespace": "g/sub/p", "git_http_url": "http://h/g/sub/p.git"},
        "commits": [], "user_name": "Pat",
    }).encode()  # fmt: skip
    event = parse_event("gitlab", {}, body)  # no event header: object_kind decides
    assert isinstance(event, PushEvent)
    assert (event.tag, event.sha, event.repo, event.author) == ("v2", "2" * 40, "g/sub/p", "Pat")


def test_forgejo_headers() -> None:
    body = _github()
    event = parse_event("gitea", {"X-Forgejo-Event": "push", "X-Forgejo-Delivery": "fj-9"}, body)
    assert isinstance(event, PushEvent) and event.delivery_id == "fj-9" and event.forge == "gitea"
    ignored = parse_event("gitea", {"X-Gitea-Event": "issues"}, b"{}")
    assert isinstance(ignored, Ignored)


@pytest.mark.parametrize(
    ("forge", "headers", "body", "fragment"),
    [
        ("github", GH, b"", "not JSON"),
        ("github", GH, b"{not json", "not JSON"),
        ("github", GH, b"[1, 2]", "not an object"),
        ("github", GH, b"\xff\xfe", "not UTF-8"),
        ("github", GH, b"[" * 100000 + b"]" * 100000, "JSON"),
        ("github", {"X-GitHub-Event": "push"}, b"{}", "full_name"),
        ("github", GH, _github(ref=None), "'ref'"),
        ("github", {}, _github(), "X-GitHub-Event"),
        ("github", GH, _github(after="nope"), "'after'"),
        ("github", GH, _github(after=None), "'after'"),
        ("github", GH, _github(ref="main"), "full ref"),
        ("github", GH, _github(ref=7), "'ref'"),
        ("github", GH, _github(repository={"clone_url": "x"}), "full_name"),
        ("github", GH, _github(repository="me/proj"), "full_name"),
        ("github", GH, _github(repository={"full_name": "me/proj"}), "clone URL"),
        ("github", {**GH, "Content-Type": "application/x-www-form-urlencoded"}, b"a=b", "payload"),
        ("gitlab", GL_PUSH, b'{"ref": "refs/heads/x", "after": "' + b"1" * 40 + b'"}', "path_with_namespace"),
        ("gitlab", {}, b'{"object_kind": "note"}', "X-Gitlab-Event"),
        ("gitea", {}, _github(), "X-Gitea-Event"),
        ("sourcehut", {}, b"{}", "unknown forge"),
    ],
)  # fmt: skip
def test_malformed_bodies_raise_one_line_payload_errors(
    forge: str, headers: dict[str, str], body: bytes, fragment: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_event(forge, headers, body)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message and len(message) < 300
