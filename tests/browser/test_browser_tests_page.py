"""The tests page in Chromium: a failed case opens to its trace, and two builds of one branch classify
their cases as new failures and fixes (with and without JavaScript)."""

from __future__ import annotations

from typing import Any

import pytest
from browser_helpers import finished, junit, push, screenshot, visit
from playwright.sync_api import expect
from server_helpers import commit, make_repo

pytestmark = pytest.mark.kernel

# the step writes the JUnit file the job reports, from a copy in the repository (as a test runner would)
CI = """\
jobs:
  unit:
    steps:
      - name: run the tests
        run: mkdir -p reports && cp results.xml reports/junit.xml
    reports: {junit: ["reports/*.xml"]}
"""
A_FAILS = "expected 41 to equal 42 in alpha"
B_FAILS = "expected colour blue but got green in beta"


@pytest.fixture(scope="module")
def two_builds(live: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build 1: alpha fails, beta and gamma pass. Build 2, the next commit on main: alpha passes,
    beta fails, gamma passes."""
    repo = tmp_path_factory.mktemp("suite") / "suite"
    first_sha = make_repo(
        repo, {"ci.yml": CI, "results.xml": junit("calc", {"alpha": A_FAILS, "beta": None, "gamma": None})}
    )
    first = finished(live, push(live, repo, first_sha))
    second_sha = commit(
        repo, {"results.xml": junit("calc", {"alpha": None, "beta": B_FAILS, "gamma": None})}, "swap"
    )
    second = finished(live, push(live, repo, second_sha))
    return first, second


def case(page: Any, name: str) -> Any:
    return page.locator("[data-testid=test-case]").filter(has_text=name)


def test_a_failed_test_expands_to_its_trace(live: Any, two_builds: Any, web_page: Any) -> None:
    page = web_page
    visit(page, f"{live.url}/builds/{two_builds[1]['id']}/tests")
    beta = case(page, "beta")
    expect(beta).to_have_count(1)
    expect(beta).to_have_attribute("data-status", "failed")
    trace = beta.locator("[data-testid=test-trace]")
    expect(trace).to_be_hidden()
    beta.locator("summary").first.click()
    expect(trace).to_be_visible()
    expect(trace).to_contain_text(f"AssertionError: {B_FAILS}")
    screenshot(page, "tests-trace-open")


def test_new_failures_and_fixes_across_two_builds(live: Any, two_builds: Any, web_page: Any) -> None:
    first, second = two_builds
    page = web_page
    visit(page, f"{live.url}/builds/{second['id']}/tests")
    expect(case(page, "beta")).to_have_attribute("data-change", "new_failure")
    expect(case(page, "beta")).to_have_attribute("data-status", "failed")
    expect(case(page, "alpha")).to_have_attribute("data-change", "fixed")
    expect(case(page, "alpha")).to_have_attribute("data-status", "passed")
    expect(case(page, "gamma")).to_have_attribute("data-change", "")
    expect(page.locator("[data-testid=tests-summary]")).to_be_visible()
    screenshot(page, "tests-second-build")
    # the first build's failure was new then (no earlier build of the branch passed it)
    visit(page, f"{live.url}/builds/{first['id']}/tests")
    expect(case(page, "alpha")).to_have_attribute("data-status", "failed")
    expect(case(page, "beta")).to_have_attribute("data-change", "")


def test_without_javascript_a_test_case_still_expands(live: Any, two_builds: Any, pages: Any) -> None:
    page = pages.new(java_script_enabled=False)
    visit(page, f"{live.url}/builds/{two_builds[1]['id']}/tests")
    beta = case(page, "beta")
    trace = beta.locator("[data-testid=test-trace]")
    expect(trace).to_be_hidden()
    beta.locator("summary").first.click()
    expect(trace).to_be_visible()
    expect(trace).to_contain_text(B_FAILS)
