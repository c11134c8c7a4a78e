"""The build list (`/builds`): the filter form, keyset pages that keep the filters, empty results."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from dashboard_helpers import parse_html, stage
from fastapi.testclient import TestClient
from server_helpers import settings_for

from runner.server.app import create_app
from runner.server.dashboard_queries import PAGE


@pytest.fixture
def client(tmp_path: Path, redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(tmp_path, redis_url))) as test_client:
        yield test_client


def read_page(client: TestClient, url: str) -> tuple[list[int], str | None, str | None, str]:
    answer = client.get(url)
    assert answer.status_code == 200, answer.text
    page = parse_html(answer.text)
    rows = page.testid("build-row")
    ids = [int(r.attrs["data-id"]) for r in rows]
    for row, build_id in zip(rows, ids, strict=True):
        assert row.find_all("a", href=f"/builds/{build_id}")
    nxt = [a.attrs["href"] for a in page.find_all("a", data_testid="next-page")]
    prev = [a.attrs["href"] for a in page.find_all("a", data_testid="prev-page")]
    return ids, (nxt or [None])[0], (prev or [None])[0], answer.text


def test_three_pages_forward_and_back_keep_the_filters(client):
    wanted = []
    for i in range(2 * PAGE + 7):
        wanted.append(stage(client, "o/app", "main", "failed" if i % 2 else "passed"))
        stage(client, "o/app", "dev", "failed")  # filtered out by branch
        if i % 10 == 0:
            stage(client, "o/other", "main", "failed")  # filtered out by repo
    failing = [b for i, b in enumerate(wanted) if i % 2]
    everything = list(reversed(wanted))

    ids1, next1, prev1, text = read_page(client, "/builds?repo=o/app&branch=main")
    assert ids1 == everything[:PAGE] and prev1 is None and next1 is not None
    assert f"{len(wanted)} builds matching the filters" in text
    assert parse_qs(urlsplit(next1).query) == {
        "repo": ["o/app"],
        "branch": ["main"],
        "before": [str(ids1[-1])],
    }

    ids2, next2, prev2, _ = read_page(client, next1)
    assert ids2 == everything[PAGE : 2 * PAGE] and next2 and prev2
    ids3, next3, prev3, _ = read_page(client, next2)
    assert ids3 == everything[2 * PAGE :] and len(ids3) == 7 and next3 is None and prev3
    assert parse_qs(urlsplit(prev3).query) == {"repo": ["o/app"], "branch": ["main"], "after": [str(ids3[0])]}

    back2, _, prev_of_2, _ = read_page(client, prev3)
    assert back2 == ids2 and prev_of_2 is not None
    back1, _, back_prev, _ = read_page(client, prev_of_2)
    assert back1 == ids1 and back_prev is None

    # a status filter on top, through the form's own field names
    ids, nxt, _, text = read_page(client, "/builds?repo=o/app&branch=main&status=failed")
    assert ids == list(reversed(failing))[:PAGE] and nxt is not None
    assert parse_qs(urlsplit(nxt).query)["status"] == ["failed"]
    form = parse_html(text).find_all("form", data_testid="build-filters")[0]
    assert form.attrs["method"] == "get" and form.attrs["action"] == "/builds"
    fields = {e.attrs.get("name") for e in form.find_all() if e.tag in ("input", "select")}
    assert fields == {"repo", "branch", "status"}
    for control in (e for e in form.find_all() if e.tag in ("input", "select")):  # every control labelled
        assert form.find_all("label", **{"for": control.attrs["id"]})
    selected = [o.attrs["value"] for o in form.find_all("option") if "selected" in o.attrs]
    assert selected == ["o/app", "failed"]
    assert form.find_all("input", name="branch")[0].attrs["value"] == "main"


def test_no_filters_lists_every_build_newest_first(client):
    a = stage(client, "o/app", "main", "passed")
    b = stage(client, "o/lib", "dev", "error")
    ids, nxt, prev, text = read_page(client, "/builds")
    assert ids == [b, a] and nxt is None and prev is None
    assert "2 builds" in text and "Clear filters" not in text
    assert (
        parse_html(text).find_all("nav")[0].find_all("a", href="/builds")[0].attrs["aria-current"] == "page"
    )


def test_empty_results_say_so_and_offer_the_way_back(client):
    stage(client, "o/app", "main", "passed")
    ids, nxt, prev, text = read_page(client, "/builds?repo=o/app&status=canceled")
    assert ids == [] and nxt is None and prev is None
    assert "No builds match these filters" in text and 'href="/builds"' in text
    ids, _, _, text = read_page(client, "/builds?before=abc&after=")  # junk bounds are ignored
    assert len(ids) == 1
    assert "No builds yet" not in text
    ids, _, _, text = read_page(client, "/builds?repo=o/app&before=1")  # past the oldest
    assert ids == [] and 'href="/builds?repo=o%2Fapp">Back to the newest builds' in text


def test_hostile_values_are_escaped_in_rows_form_and_links(client):
    repo, branch = 'o/"><script>x()</script>', "feat/<b>&x=1"
    stage(client, repo, branch, "passed", message="<img src=x onerror=y()>")
    for _ in range(PAGE):
        stage(client, repo, branch, "passed")
    ids, nxt, _, text = read_page(
        client, f"/builds?repo={repo.replace('&', '%26')}&branch={branch.replace('&', '%26')}"
    )
    assert len(ids) == PAGE and nxt is not None
    for raw in ("<script>x()</script>", "<b>&x=1", "<img src=x"):
        assert raw not in text
    assert parse_qs(urlsplit(nxt).query)["repo"] == [repo]
    assert parse_qs(urlsplit(nxt).query)["branch"] == [branch]
    older, _, _, _ = read_page(client, nxt)
    assert len(older) == 1
