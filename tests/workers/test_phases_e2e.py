"""A real worker run records the phases the build page draws (clone, first log line, image...) and a
log the page can page through: real redis-server, `runner serve`, `runner worker`, real containers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from server_helpers import github_push, make_repo
from stack import Stack

pytestmark = pytest.mark.kernel

JOB = "lint (os: debian/12)"  # a matrix value puts `/` and spaces in the name
CI = """\
jobs:
  lint:
    matrix: {os: ["debian/12"]}
    steps:
      - name: talk
        run: printf '\\033[32mgreen\\033[0m <b>tag</b>\\n' && seq 1 2500
"""


@pytest.fixture
def stack(tmp_path: Path, redis_url: str) -> Iterator[Stack]:
    stack = Stack(tmp_path, redis_url)
    try:
        stack.start_server()
        yield stack
    finally:
        stack.stop()


def test_a_worker_run_records_clone_and_first_line_for_the_page(stack: Stack, tmp_path: Path) -> None:
    repo = tmp_path / "project"
    sha = make_repo(repo, {"ci.yml": CI})
    stack.start_worker("w1")
    build_id = stack.push(github_push(repo, sha)).json()["build_id"]
    build = stack.wait_build(build_id, timeout=90)
    [job] = build["jobs"]
    assert (job["name"], job["status"]) == (JOB, "passed"), build
    phases = job["phases"]
    assert phases["clone"] > 0 and 0 < phases["first_line"] <= job["duration"]
    assert {"workspace", "image"} <= set(phases)
    base = f"/api/builds/{build_id}/jobs/{quote(JOB, safe='')}"
    tail = stack.client.get(f"{base}/log/lines", params={"tail": 3}).json()
    assert tail["complete"] and tail["lines"][0] == "2500" and tail["lines"][-1].startswith("--- job passed")
    top = stack.client.get(f"{base}/log/lines", params={"start": 1, "count": 400}).json()["lines"]
    assert top[0].startswith("--- clone ") and "--- step talk" in top
    assert "\x1b[32mgreen\x1b[0m <b>tag</b>" in top  # stored raw: the page colours it
    page = stack.client.get(f"/builds/{build_id}").text
    assert 'data-testid="phases"' in page and "clone" in page and "first log line after" in page
    assert "&lt;b&gt;tag&lt;/b&gt;" not in page  # the page shows only the tail: 1,000 lines
    assert f'id="L{tail["total"]}"' in page
