"""Browser tests: Debian's Chromium (headless, Playwright) against a live stack of real processes.

- `chromium_browser`: one headless Chromium for the whole session.
- `web_page`: a fresh browser context and page per test (desktop size); it takes a full-page screenshot
  when the test ends (`<test>-FAILED.png` when it failed) and fails the test on an uncaught
  JavaScript exception of the page.
- `live`: one stack for the session, shared by every browser test: a real redis-server on a free port,
  `runner serve` (uvicorn) on 127.0.0.1, one `runner worker` (Celery), a temporary RUNNER_HOME; it is
  `tests/workers/stack.py`'s `Stack`, stopped when the session ends.

The tests that run builds are marked `kernel` (the worker runs jobs in containers).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_helpers import DESKTOP, STEP_TIMEOUT_MS, launch_chromium, screenshot
from helpers.redis_server import start_redis

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so that `web_page` knows at teardown whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def web_page(chromium_browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = chromium_browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    try:
        yield page
    finally:
        reports = request.node.stash.get(_REPORTS, {})
        failed = any(report.failed for report in reports.values())
        try:
            screenshot(page, f"{request.node.name}-{'FAILED' if failed else 'end'}")
        finally:
            context.close()
    assert not errors, f"uncaught JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from stack import Stack

    root = tmp_path_factory.mktemp("browser-stack")
    broker_url, stop_redis = start_redis(root)
    stack = Stack(root, broker_url)
    try:
        stack.start_server()
        stack.start_worker("worker")
        yield stack
    finally:
        stack.stop()
        stop_redis()
