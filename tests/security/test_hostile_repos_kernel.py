"""Hostile repositories end to end (issue 7 §5): symlinks out of the workspace and HTML in outputs.

One `runner exec` of a repository whose tracked files and job-made files are symlinks to a canary
file on the host: as artifacts, JUnit reports, a cache path and an image `copy:` source. Nothing
of the canary may reach the run's outputs, the cache store or the image. A second job prints
HTML/JS in its log and its test names, which report.html must show as text.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from security_helpers import commit, every_file_text, log_lines, make_repo, run_dir, runner_exec

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("these tests run containers as root", allow_module_level=True)

SCRIPT = '<script>alert("x")</script>'
IMG = "<img src=x onerror=alert(1)>"

PIPELINE = """
jobs:
  links:
    cache:
      - key: hostile
        paths: [cache-link, /root/cache-link]
    steps:
      - name: the tracked link reads nothing of the host
        run: |
          cat host-link 2>/dev/null || echo "host-link: not readable here"
      - name: plant links
        run: |
          mkdir -p out reports
          ln -sf "$CANARY" out/leak
          ln -sf "$CANARY" reports/leak.xml
          ln -sf "$CANARY" cache-link
          ln -sf "$CANARY" /root/cache-link
          ln -sf / out/root
    artifacts: [host-link, out/*]
    reports: {junit: [junit-link.xml, reports/*.xml]}
  html:
    steps:
      - run: |
          echo 'log: SCRIPT IMG'
          mkdir -p reports
          cd reports
          printf '%s' '<testsuite name="s"><testcase classname="c" name="IMG_XML">' > hostile.xml
          printf '%s' '<failure message="SCRIPT_XML">SCRIPT_XML</failure>' >> hostile.xml
          printf '%s' '</testcase></testsuite>' >> hostile.xml
    reports: {junit: [reports/*.xml]}
    allow_failure: true
  copy:
    image:
      from: host
      build:
        - copy: copy-link
    steps: [cat /src/copy-link]
    allow_failure: true
"""


def xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    token = f"canary-{secrets.token_hex(16)}"
    path = Path("/root") / f"runner-hostile-{token[-8:]}"
    path.write_text(token + "\n")
    try:
        yield path, token
    finally:
        path.unlink(missing_ok=True)


def test_symlinks_out_of_the_workspace_leak_nothing(canary: tuple[Path, str], tmp_path: Path) -> None:
    path, token = canary
    pipeline = (
        PIPELINE.replace("SCRIPT_XML", xml_text(SCRIPT).replace("'", ""))
        .replace("IMG_XML", xml_text(IMG))
        .replace("SCRIPT", SCRIPT.replace('"', ""))
        .replace("IMG", IMG)
    )
    repo = make_repo(tmp_path, pipeline)
    for name in ("host-link", "junit-link.xml", "copy-link"):
        os.symlink(path, repo / name)
    commit(repo)
    home = tmp_path / "home"
    result = runner_exec(repo, "--env", f"CANARY={path}", home=home)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    summary = json.loads((run_dir(repo) / "summary.json").read_text())
    jobs = {job["name"]: job for job in summary["jobs"]}

    # the links job passed, read nothing, kept none of the links' targets
    assert jobs["links"]["status"] == "passed", jobs["links"]
    assert "host-link: not readable here" in log_lines(repo, "links")
    kept = {a["path"] for a in jobs["links"]["artifacts"]}
    assert not kept & {"host-link", "out/leak", "out/root"}, kept
    # the copy job's build refused the link instead of copying the host file into the image
    assert jobs["copy"]["status"] == "failed"
    assert "outside the build context" in json.dumps(jobs["copy"]) + result.stdout

    everything = "\n".join(
        [result.stdout, result.stderr, every_file_text(repo / ".runner"), every_file_text(home)]
    )
    assert token not in everything, "the canary reached the run's outputs, caches or images"
    cached = sorted((home / "caches").glob("hostile-*/data/*"))
    assert len(cached) == 2  # a cached link stays a link (restored inside a container), never its target
    assert all(os.readlink(link) == str(path) for link in cached)
    warnings = [line for line in log_lines(repo, "links") if "outside the workspace" in line]
    assert len(warnings) == 5, warnings  # 3 artifacts and 2 reports skipped, each said once

    # HTML and script in log lines and test names are text in report.html
    html = (run_dir(repo) / "report.html").read_text()
    assert SCRIPT.replace('"', "") not in html and IMG not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert all("alert(" not in script for script in re.findall(r"<script>(.*?)</script>", html, re.S))
