"""Browser tests: Debian's Chromium (headless, Playwright) against a live stack of real processes.

- `chromium_browser`: one headless Chromium for the whole session.
- `pages.new(**context_options)`: a page in a fresh browser context; every page of a test gets a
  full-page screenshot when the test ends (`<test>-FAILED.png` when it failed), and an uncaught
  JavaScript exception on any of them fails the test. `web_page` is `pages.new()` (desktop size).
- `live`: one stack for the session, shared by every browser test: a real redis-server on a free port,
  `runner serve` (uvicorn) on 127.0.0.1, one `runner worker` (Celery), a temporary RUNNER_HOME; it is
  `tests/workers/stack.py`'s `Stack`.
Both session fixtures stop right after the last browser test of the run, not when the whole suite ends.

The tests that run builds are marked `kernel` (the worker runs jobs in containers).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_helpers import (
    DESKTOP,
    STEP_TIMEOUT_MS,
    launch_chromium,
    safe_name,
    screenshot,
    screenshot_dir,
)
from helpers.redis_server import start_redis

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so that `pages` knows at teardown whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


_STILL_RUNNING: list[Callable[[], None]] = []  # stops of the session's browser and stack


def _stopped_early(stop: Callable[[], None]) -> Callable[[], None]:
    """`stop`, run once: by the fixture at the end of the session, or after the last browser test."""
    done = False

    def once() -> None:
        nonlocal done
        if not done:
            done = True
            stop()

    _STILL_RUNNING.append(once)
    return once


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """After the last browser test of the run, stop Chromium and the stack: the rest of the suite
    (which comes after tests/browser/) should not share the machine with them."""
    result = yield
    here = Path(__file__).resolve().parent
    later = item.session.items[item.session.items.index(item) + 1 :]
    if not any(here in Path(other.path).resolve().parents for other in later):
        while _STILL_RUNNING:
            _STILL_RUNNING.pop()()
    return result


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=STEP_TIMEOUT_MS)
    for old in screenshot_dir().glob("*.png"):  # the directory shows the last run only
        old.unlink()
    playwright = sync_playwright().start()
    try:
        browser = launch_chromium(playwright)
    except BaseException:
        playwright.stop()
        raise

    def stop() -> None:
        try:
            browser.close()
        finally:
            playwright.stop()

    shutdown = _stopped_early(stop)
    try:
        yield browser
    finally:
        shutdown()


class Pages:
    """Opens pages, each in a fresh browser context (`new(java_script_enabled=False)`,
    `new(viewport=PHONE)`, `new(color_scheme="dark")`...); records their uncaught JavaScript errors."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.opened: list[tuple[Any, Any]] = []
        self.errors: list[str] = []

    def new(self, **options: Any) -> Any:
        context = self.browser.new_context(**{"viewport": DESKTOP, **options})
        context.set_default_timeout(STEP_TIMEOUT_MS)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        self.opened.append((context, page))
        return page

    def close(self, name: str, failed: bool) -> None:
        """A last full-page screenshot of every page (`-FAILED` when the test failed), then close."""
        suffix = "FAILED" if failed else "end"
        try:
            for number, (_context, page) in enumerate(self.opened):
                base = safe_name(name.removeprefix("test_"))  # test_x[a-b] -> x-a-b
                label = f"{base}-{suffix}" if number == 0 else f"{base}-{number}-{suffix}"
                if not page.is_closed():
                    screenshot(page, label)
        finally:
            for context, _page in self.opened:
                context.close()


@pytest.fixture
def pages(chromium_browser: Any, request: pytest.FixtureRequest) -> Iterator[Pages]:
    """Pages for one test; the test fails on an uncaught JavaScript error of any of them."""
    opened = Pages(chromium_browser)
    try:
        yield opened
    finally:
        reports = request.node.stash.get(_REPORTS, {})
        opened.close(request.node.name, any(report.failed for report in reports.values()))
    assert not opened.errors, f"uncaught JavaScript errors on the page: {opened.errors}"


@pytest.fixture
def web_page(pages: Pages) -> Any:
    """A desktop-sized page with JavaScript, in a fresh context."""
    return pages.new()


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from stack import Stack

    root = tmp_path_factory.mktemp("browser-stack")
    broker_url, stop_redis = start_redis(root)
    stack = Stack(root, broker_url)

    def stop() -> None:
        try:
            stack.stop()
        finally:
            stop_redis()

    shutdown = _stopped_early(stop)
    try:
        with ThreadPoolExecutor(1) as pool:  # the worker boots while the server does
            worker = pool.submit(stack.start_worker, "worker")
            stack.start_server()
            worker.result()
        yield stack
    finally:
        shutdown()
