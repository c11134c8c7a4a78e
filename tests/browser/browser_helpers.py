"""Helpers of the browser tests: Debian's Chromium under Playwright, screenshots, a live stack, a gate.

Playwright never downloads a browser here (no internet): it always drives `/usr/bin/chromium`, the
Debian package that `scripts/setup --test` installs. A missing Chromium fails the tests, naming the fix.

Screenshots go to `$RUNNER_TEST_ARTIFACTS/screenshots/` (default `<repo>/test-artifacts/screenshots/`,
git-ignored), one file per step a test names, and one at the end of every test (`-FAILED` when it failed).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("RUNNER_TEST_CHROMIUM", "/usr/bin/chromium"))
REPOSITORY = Path(__file__).resolve().parents[2]
STEP_TIMEOUT_MS = 30_000  # generous: "does not hang", never a timing assertion
PHONE = {"width": 375, "height": 800}
DESKTOP = {"width": 1280, "height": 900}


def screenshot_dir() -> Path:
    root = os.environ.get("RUNNER_TEST_ARTIFACTS") or str(REPOSITORY / "test-artifacts")
    path = Path(root) / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def safe_name(text: str) -> str:
    """A file name from a test id or a step name: letters, digits, dots, dashes."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")[:150] or "page"


def screenshot(page: Any, name: str) -> Path:
    """A full-page PNG of `page` under the screenshot directory; returns its path."""
    path = screenshot_dir() / f"{safe_name(name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def launch_chromium(playwright: Any) -> Any:
    """Headless Debian Chromium (`--no-sandbox`: the tests run as root). Fails, never skips, without it."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is not at {CHROMIUM}: the browser tests drive Debian's package "
            "(apt-get install -y chromium, or scripts/setup --test); Playwright downloads no browser here"
        )
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    )


class Gate:
    """A TCP port on 127.0.0.1 that refuses connections until `open()`: a job step (on the host
    network) waits for it, so a test decides when the step goes on, with no sleep to guess."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        self.port = int(self.sock.getsockname()[1])

    def wait_command(self) -> str:
        """A one-line shell command that returns once the gate is open (bound it with the job's timeout)."""
        probe = f"import socket; socket.create_connection(('127.0.0.1', {self.port}), 1)"
        return f"until python3 -c {shlex.quote(probe)} 2>/dev/null; do sleep 0.1; done"

    def open(self) -> None:
        self.sock.listen(8)

    def close(self) -> None:
        self.sock.close()


def junit(suite: str, cases: dict[str, str | None]) -> str:
    """A JUnit XML file: `{name: None}` passes, `{name: "message"}` fails with that assertion text."""
    body = []
    for name, failure in cases.items():
        if failure is None:
            body.append(f'  <testcase classname="{suite}" name="{name}" time="0.01"/>')
        else:
            body.append(
                f'  <testcase classname="{suite}" name="{name}" time="0.02">'
                f'<failure message="{failure}">Traceback (most recent call last):\n'
                f'  File "test_{suite}.py", line 7, in {name}\n'
                f"AssertionError: {failure}</failure></testcase>"
            )
    failures = sum(1 for failure in cases.values() if failure is not None)
    return (
        '<?xml version="1.0"?>\n'
        f'<testsuite name="{suite}" tests="{len(cases)}" failures="{failures}">\n'
        + "\n".join(body)
        + "\n</testsuite>\n"
    )


def push(live: Any, repo: Path, sha: str, branch: str = "main") -> int:
    """A signed GitHub push of `sha` to the live stack's webhook; returns the queued build's id."""
    from server_helpers import github_push

    response = live.push(github_push(repo, sha, branch))
    assert response.status_code == 202, response.text
    build_id: int = response.json()["build_id"]
    return build_id


def finished(live: Any, build_id: int, status: str = "passed") -> dict[str, Any]:
    """Waits for a build to finish with `status`; returns it as the API gives it."""
    build: dict[str, Any] = live.wait_build(build_id, timeout=60)
    assert build["status"] == status, build
    return build


def visit(page: Any, url: str) -> Any:
    """`page.goto(url)`, failing at once (with the body's start) unless the server answers 200."""
    response = page.goto(url)
    assert response is not None, f"no response for {url}"
    assert response.status == 200, f"{url} answered {response.status}: {response.text()[:500]}"
    return response
