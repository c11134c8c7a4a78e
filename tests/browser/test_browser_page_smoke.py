"""Every results page at phone size (375x800) and in the dark colour scheme: it answers, it renders
without a JavaScript error or a page-wide sideways scroll, and its screenshot is kept (by `pages`).
Also the dashboard's branch row and trend, and the build list's filter form."""

from __future__ import annotations

import re
from typing import Any

import pytest
from browser_helpers import PHONE, finished, junit, push, visit
from playwright.sync_api import expect
from server_helpers import make_repo

pytestmark = pytest.mark.kernel

CI = """\
jobs:
  build:
    steps:
      - name: compile
        run: echo compiled && mkdir -p reports && cp results.xml reports/junit.xml
    reports: {junit: ["reports/*.xml"]}
  check:
    needs: [build]
    steps:
      - name: lint
        run: echo linted
"""


@pytest.fixture(scope="module")
def smoke_build(live: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    repo = tmp_path_factory.mktemp("smoke") / "smoke"
    results = junit("app", {"parses": None, "renders": "expected a page, got an empty body", "saves": None})
    return finished(live, push(live, repo, make_repo(repo, {"ci.yml": CI, "results.xml": results})))


# (name, path, a hook every version of that page shows)
PAGES = [
    ("dashboard", "/", "[data-testid=repo-branch]"),
    ("builds", "/builds", "[data-testid=build-row]"),
    ("build", "/builds/{id}", "[data-testid=build-status]"),
    ("tests", "/builds/{id}/tests", "[data-testid=test-case]"),
]


@pytest.mark.parametrize("look", ["phone", "dark"])
@pytest.mark.parametrize(("name", "path", "hook"), PAGES, ids=[p[0] for p in PAGES])
def test_each_page_renders_on_a_phone_and_in_the_dark(
    live: Any, smoke_build: dict[str, Any], pages: Any, look: str, name: str, path: str, hook: str
) -> None:
    options = {"viewport": PHONE, "is_mobile": True, "has_touch": True} if look == "phone" else {}
    page = pages.new(color_scheme="dark", **options) if look == "dark" else pages.new(**options)
    visit(page, live.url + path.format(id=smoke_build["id"]))
    expect(page.locator(hook).first).to_be_visible()
    if look == "phone":
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"{path} scrolls sideways by {overflow}px at 375px wide"


def test_the_dashboard_shows_the_branch_and_the_build_list_filters_by_repository(
    live: Any, smoke_build: dict[str, Any], web_page: Any
) -> None:
    page = web_page
    visit(page, f"{live.url}/")
    branch = page.locator(f"[data-testid=repo-branch][data-repo='{smoke_build['repo']}'][data-branch=main]")
    expect(branch).to_have_attribute("data-status", "passed")
    trend = branch.locator("svg[data-testid=trend]")
    expect(trend).to_have_attribute("data-points", "1")
    expect(page.locator("[data-testid=queue]")).to_be_visible()
    visit(page, f"{live.url}/builds")
    filters = page.locator("form[data-testid=build-filters]")
    filters.locator("select[name=repo]").select_option(smoke_build["repo"])
    filters.locator("[type=submit]").click()
    expect(page).to_have_url(re.compile(r"[?&]repo=local%2Fsmoke\b"))
    rows = page.locator("[data-testid=build-row]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-status", "passed")
    rows.first.locator(f"a[href='/builds/{smoke_build['id']}']").first.click()
    expect(page.locator("[data-testid=build-status]")).to_have_text("passed")
