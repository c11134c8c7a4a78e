"""The build page in Chromium: the live log (SSE) while a job runs, the log search, the rerun button,
and the log tail without JavaScript. Builds run on the live stack's real worker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser_helpers import Gate, finished, push, screenshot, visit
from playwright.sync_api import expect
from server_helpers import TOKEN, make_repo

pytestmark = pytest.mark.kernel

# "quokka" is on exactly three lines of the log; the shell joins it, so no command line holds it
SEARCH_CI = """\
jobs:
  talk:
    steps:
      - name: print some lines
        run: |
          printf '%s\\n' 'first line' "a quok""ka in the morning" 'plain middle' "second quok""ka"
          printf '%s\\n' 'nothing here' "third quok""ka at noon" 'the end'
  other:
    steps:
      - name: say something else
        run: echo from the other job
"""
WORD = "quok" + "ka"

# the step prints a line, waits on the host's loopback until the test opens its gate, prints another
LIVE_CI = """\
jobs:
  slow:
    network: host
    timeout: 2m
    steps:
      - name: wait for the test
        run: |
          echo marker-one-live
          {wait}
          echo marker-two-live
"""


@pytest.fixture(scope="module")
def talk_build(live: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finished, passed build: the log of its job `talk` holds WORD on three lines."""
    repo = tmp_path_factory.mktemp("talk") / "talk"
    sha = make_repo(repo, {"ci.yml": SEARCH_CI})
    return finished(live, push(live, repo, sha))


def test_a_log_line_appears_while_the_build_runs(live: Any, web_page: Any, tmp_path: Path) -> None:
    gate = Gate()
    ci = LIVE_CI.format(wait=gate.wait_command())
    repo = tmp_path / "live-log"
    try:
        build_id = push(live, repo, make_repo(repo, {"ci.yml": ci}))
        page = web_page
        streams: list[str] = []
        page.on("request", lambda request: streams.append(request.url))
        visit(page, f"{live.url}/builds/{build_id}")
        page.evaluate("window.__notReloaded = true")
        lines = page.locator("[data-testid=log] [data-testid=log-line]")
        expect(lines.filter(has_text="marker-one-live")).to_have_count(1)
        # the step is held at the gate: the first line came live, the second cannot exist yet
        expect(lines.filter(has_text="marker-two-live")).to_have_count(0)
        expect(page.locator("[data-testid=build-status]")).to_contain_text("running")
        assert re.fullmatch(r"L\d+", lines.filter(has_text="marker-one-live").get_attribute("id") or "")
        screenshot(page, "build-live-first-marker")
        gate.open()
        expect(lines.filter(has_text="marker-two-live")).to_have_count(1)
        expect(page.locator("[data-testid=build-status]")).to_contain_text("passed", timeout=60_000)
        assert page.evaluate("window.__notReloaded === true"), "the page reloaded itself"
        stream = f"/api/builds/{build_id}/jobs/slow/log/stream"
        assert any(urlsplit(url).path == stream for url in streams), streams
    finally:
        gate.close()
    assert finished(live, build_id)["status"] == "passed"


def test_the_log_search_counts_highlights_and_moves_between_matches(
    live: Any, talk_build: dict[str, Any], web_page: Any
) -> None:
    page = web_page
    visit(page, f"{live.url}/builds/{talk_build['id']}?job=talk")
    log = page.locator("[data-testid=log]")
    expect(log.locator("[data-testid=log-line]").filter(has_text="the end")).to_have_count(1)
    page.locator("input[data-testid=log-search]").fill(WORD)
    expect(page.locator("[data-testid=log-search-count]")).to_contain_text("3 matches")
    matches = log.locator(".match")
    expect(matches).to_have_count(3)
    for index in range(3):
        expect(matches.nth(index)).to_have_text(WORD)
    # each match sits on its own line, and the lines without the word have none
    lines_with_matches = log.locator("[data-testid=log-line]").filter(has=page.locator(".match"))
    expect(lines_with_matches).to_have_count(3)
    expect(lines_with_matches.filter(has_text=WORD)).to_have_count(3)
    screenshot(page, "build-log-search")
    # next / previous (Enter and Shift+Enter in the search box) move the current match, wrapping around
    search = page.locator("input[data-testid=log-search]")
    current_line = log.locator("[data-testid=log-line]").filter(has=page.locator(".match.current"))
    expect(current_line).to_contain_text(f"a {WORD} in the morning")
    search.press("Enter")
    expect(current_line).to_contain_text(f"second {WORD}")
    search.press("Enter")
    expect(current_line).to_contain_text(f"third {WORD} at noon")
    search.press("Shift+Enter")
    expect(current_line).to_contain_text(f"second {WORD}")
    search.press("Enter")
    search.press("Enter")
    expect(current_line).to_contain_text(f"a {WORD} in the morning")
    expect(log.locator(".match.current")).to_have_count(1)
    search.fill("")
    expect(matches).to_have_count(0)


def test_the_rerun_button_makes_a_build_and_lands_on_it(
    live: Any, talk_build: dict[str, Any], web_page: Any
) -> None:
    page = web_page
    old = talk_build["id"]
    visit(page, f"{live.url}/builds/{old}")
    page.locator("input[data-testid=api-token]").fill("not-the-token")
    page.locator("button[data-testid=rerun]").click()
    expect(page.get_by_text("Wrong token")).to_be_visible()
    assert page.url.endswith(f"/builds/{old}")
    page.locator("input[data-testid=api-token]").fill(TOKEN)
    page.locator("button[data-testid=rerun]").click()
    page.wait_for_url(re.compile(r"/builds/(\d+)(\?.*)?$"))
    page.wait_for_url(lambda url: not re.search(rf"/builds/{old}(\?.*)?$", url))
    new = int(re.search(r"/builds/(\d+)", page.url)[1])  # type: ignore[index]
    assert new > old
    expect(page.locator("[data-testid=build-status]")).to_contain_text("passed", timeout=60_000)
    rerun = finished(live, new)
    assert rerun["sha"] == talk_build["sha"] and rerun["repo"] == talk_build["repo"]
    builds = live.client.get("/api/builds", params={"repo": talk_build["repo"]}).json()
    assert sorted(build["id"] for build in builds) == [old, new]  # one click, one build


def test_without_javascript_the_build_page_shows_the_log_tail(
    live: Any, talk_build: dict[str, Any], pages: Any
) -> None:
    page = pages.new(java_script_enabled=False)
    visit(page, f"{live.url}/builds/{talk_build['id']}?job=talk")
    lines = page.locator("[data-testid=log] [data-testid=log-line]")
    expect(lines.filter(has_text="the end")).to_have_count(1)
    expect(lines.filter(has_text=WORD)).to_have_count(3)
    expect(page.locator("[data-testid=build-status]")).to_contain_text("passed")
    expect(page.locator("a[data-testid=log-raw]")).to_have_attribute("href", re.compile(r"/log$"))


def test_the_job_links_show_one_job_log_at_a_time(
    live: Any, talk_build: dict[str, Any], web_page: Any
) -> None:
    page = web_page
    visit(page, f"{live.url}/builds/{talk_build['id']}?job=talk")
    links = page.locator("a[data-testid=job-link]")
    lines = page.locator("[data-testid=log] [data-testid=log-line]")
    expect(links).to_have_count(2)
    expect(links.filter(has_text="talk")).to_have_attribute("aria-current", "true")
    expect(lines.filter(has_text="the end")).to_have_count(1)
    links.filter(has_text="other").click()
    expect(page).to_have_url(re.compile(r"[?&]job=other\b"))
    expect(lines.filter(has_text="from the other job")).to_have_count(1)
    expect(lines.filter(has_text="the end")).to_have_count(0)
    expect(links.filter(has_text="other")).to_have_attribute("aria-current", "true")


def test_the_cancel_button_stops_a_running_build(live: Any, web_page: Any, tmp_path: Path) -> None:
    gate = Gate()  # never opened: only the cancel ends the step
    repo = tmp_path / "cancel-me"
    try:
        build_id = push(live, repo, make_repo(repo, {"ci.yml": LIVE_CI.format(wait=gate.wait_command())}))
        page = web_page
        visit(page, f"{live.url}/builds/{build_id}")
        lines = page.locator("[data-testid=log] [data-testid=log-line]")
        expect(lines.filter(has_text="marker-one-live")).to_have_count(1)
        page.locator("input[data-testid=api-token]").fill(TOKEN)
        page.locator("button[data-testid=cancel]").click()
        expect(page.locator("[data-testid=build-status]")).to_contain_text("canceled")
        expect(page.locator("button[data-testid=cancel]")).to_have_count(0)
    finally:
        gate.close()
    assert live.wait_build(build_id, timeout=60)["status"] == "canceled"
