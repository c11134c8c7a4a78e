"""Commit status calls against a real local HTTP server that records every request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from runner.forges import StatusReporter, reporter_for

SHA = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ForgeServer:
    """Answers each POST with the next scripted status code (201 once the script is used up)."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    script: list[int] = field(default_factory=list)


@pytest.fixture
def forge_server() -> Iterator[ForgeServer]:
    state = ForgeServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            state.requests.append(
                Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw))
            )
            code = state.script.pop(0) if state.script else 201
            payload = b'{"id": 1}' if code < 400 else b'{"message": "nope"}'
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_github_status(forge_server: ForgeServer) -> None:
    reporter = StatusReporter("github", forge_server.url + "/", "gh-token", backoff=0)
    assert reporter.report("octo/hello", SHA, "running", "runner/test", "running", "http://ci/builds/1")
    assert reporter.report("octo/hello", SHA, "failed", "runner/test", "x" * 500)
    first, second = forge_server.requests
    assert (first.method, first.path) == ("POST", f"/repos/octo/hello/statuses/{SHA}")
    assert first.headers["authorization"] == "Bearer gh-token"
    assert first.headers["accept"] == "application/vnd.github+json"
    assert first.body == {
        "state": "pending",
        "context": "runner/test",
        "description": "running",
        "target_url": "http://ci/builds/1",
    }
    assert second.body["state"] == "failure" and len(second.body["description"]) == 140
    assert "target_url" not in second.body


def test_gitlab_status_encodes_the_project_path(forge_server: ForgeServer) -> None:
    reporter = StatusReporter("gitlab", forge_server.url, "gl-token", backoff=0)
    assert reporter.report("group/sub/proj", SHA, "running", "runner", "go", "http://ci/1")
    assert reporter.report("group/sub/proj", SHA, "canceled", "runner", "stopped")
    assert reporter.report("group/sub/proj", SHA, "error", "runner", "oops")
    paths = {r.path for r in forge_server.requests}
    assert paths == {f"/api/v4/projects/group%2Fsub%2Fproj/statuses/{SHA}"}
    assert [r.body["state"] for r in forge_server.requests] == ["running", "canceled", "failed"]
    assert forge_server.requests[0].headers["private-token"] == "gl-token"
    assert forge_server.requests[0].body["name"] == "runner"


def test_gitea_status(forge_server: ForgeServer) -> None:
    reporter = StatusReporter("gitea", forge_server.url + "/gitea", "gt-token", backoff=0)
    assert reporter.report("org/repo", SHA, "passed", "runner/ci", "ok", "http://ci/2")
    (request,) = forge_server.requests
    assert request.path == f"/gitea/api/v1/repos/org/repo/statuses/{SHA}"
    assert request.headers["authorization"] == "token gt-token"
    assert request.body["state"] == "success" and request.body["context"] == "runner/ci"


def test_retries_5xx_then_succeeds(forge_server: ForgeServer) -> None:
    forge_server.script = [502, 503]
    reporter = StatusReporter("github", forge_server.url, "t", backoff=0.01)
    assert reporter.report("o/r", SHA, "success", "ci", "done")
    assert len(forge_server.requests) == 3


def test_gives_up_after_attempts_and_on_4xx_without_raising(forge_server: ForgeServer) -> None:
    forge_server.script = [500, 500, 500]
    reporter = StatusReporter("github", forge_server.url, "t", attempts=3, backoff=0.01)
    assert reporter.report("o/r", SHA, "success", "ci") is False
    assert len(forge_server.requests) == 3
    forge_server.script = [422]
    assert reporter.report("o/r", SHA, "success", "ci") is False
    assert len(forge_server.requests) == 4  # a client error is not retried


def test_unreachable_server_and_unknown_state_return_false() -> None:
    reporter = StatusReporter("gitea", "http://127.0.0.1:9", "t", attempts=2, backoff=0.01, timeout=1)
    assert reporter.report("o/r", SHA, "success", "ci") is False
    assert reporter.report("o/r", SHA, "exploded", "ci") is False


def test_reporter_for_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, forge_server: ForgeServer
) -> None:
    for name in ("GITHUB", "GITLAB", "GITEA"):
        monkeypatch.delenv(f"RUNNER_{name}_URL", raising=False)
        monkeypatch.delenv(f"RUNNER_{name}_TOKEN", raising=False)
    assert reporter_for("github") is None
    monkeypatch.setenv("RUNNER_GITHUB_TOKEN", "abc")
    github = reporter_for("github")
    assert github is not None and github.base_url == "https://api.github.com" and github.token == "abc"
    monkeypatch.setenv("RUNNER_GITEA_TOKEN", "t")
    assert reporter_for("gitea") is None  # Gitea has no public default host
    monkeypatch.setenv("RUNNER_GITEA_URL", forge_server.url)
    gitea = reporter_for("gitea")
    assert gitea is not None
    assert gitea.report("a/b", SHA, "pending", "ci", "queued")
    assert forge_server.requests[-1].path == f"/api/v1/repos/a/b/statuses/{SHA}"
    assert reporter_for("bitbucket") is None
    with pytest.raises(ValueError, match="unknown forge"):
        StatusReporter("bitbucket", "http://x", "t")
