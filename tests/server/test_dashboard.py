"""The dashboard (`/`), the artifact list partial and the artifact download, over the real store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_helpers import parse_html, set_job_status, stage, stage_waiting, store
from fastapi.testclient import TestClient
from server_helpers import settings_for

from runner.server.app import create_app
from runner.server.pages import environment
from runner.server.pages.dashboard import ago, human_duration


@pytest.fixture
def client(tmp_path: Path, redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(tmp_path, redis_url))) as test_client:
        yield test_client


def rows_by_branch(text: str) -> dict[tuple[str, str], dict[str, str]]:
    rows = parse_html(text).testid("repo-branch")
    return {(r.attrs["data-repo"], r.attrs["data-branch"]): r.attrs for r in rows}


def test_branches_show_their_latest_build_and_a_trend_of_recent_builds(client):
    for i in range(24):  # more than a trend shows
        stage(client, "o/app", "main", "failed" if i == 22 else "passed", duration=10 + i, tests=(100 + i, 0))
    latest_main = stage(client, "o/app", "main", "failed", duration=99, tests=(130, 3))
    stage(client, "o/app", "dev", "passed", duration=5)
    dev_latest = stage(client, "o/app", "dev", "canceled", duration=2)
    stage(client, "o/lib", "main", "error", duration=1)

    answer = client.get("/")
    assert answer.status_code == 200
    rows = rows_by_branch(answer.text)
    assert set(rows) == {("o/app", "main"), ("o/app", "dev"), ("o/lib", "main")}
    assert rows[("o/app", "main")]["data-status"] == "failed"
    assert rows[("o/app", "dev")]["data-status"] == "canceled"
    assert rows[("o/lib", "main")]["data-status"] == "error"

    page = parse_html(answer.text)
    main_row = next(
        r
        for r in page.testid("repo-branch")
        if r.attrs["data-branch"] == "main" and r.attrs["data-repo"] == "o/app"
    )
    assert main_row.find_all("a", href=f"/builds/{latest_main}")
    [trend] = main_row.find_all("svg", data_testid="trend")
    bars = trend.find_all("rect")
    assert trend.attrs["data-points"] == "20" and len(bars) == 20
    # oldest on the left, the latest build last; each bar says its build, status and duration in words
    assert bars[-1].attrs["data-build"] == str(latest_main) and "bar-failed" in bars[-1].attrs["class"]
    assert bars[-1].find_all("title")[0].text == f"#{latest_main} failed, 1m 39s, 130 tests (3 failing)"
    assert int(bars[0].attrs["data-build"]) == latest_main - 19
    heights = [float(b.attrs["height"]) for b in bars]
    assert heights[-1] == max(heights)  # the longest build has the tallest bar
    summary = trend.find_all("title")[0].text
    assert summary.startswith("o/app main: last 20 builds, 18 passed, 2 failed")
    assert trend.find_all("polyline")  # the test count line

    dev_row = next(r for r in page.testid("repo-branch") if r.attrs["data-branch"] == "dev")
    [dev_trend] = dev_row.find_all("svg", data_testid="trend")
    assert dev_trend.attrs["data-points"] == "2"
    assert dev_trend.find_all("rect")[-1].attrs["data-build"] == str(dev_latest)
    # status in words beside the colour, and the duration
    assert "canceled" in dev_row.text and "2.0s" in dev_row.text
    # the most recently built repository comes first
    repos = [r.attrs["data-repo"] for r in page.testid("repo-branch")]
    assert repos[0] == "o/lib"

    # one repository, as the build pages' breadcrumbs link it
    only = client.get("/?repo=o/app").text
    assert set(rows_by_branch(only)) == {("o/app", "main"), ("o/app", "dev")}
    assert 'href="/">All repositories' in only
    missing = client.get("/?repo=o/nothing").text
    assert rows_by_branch(missing) == {} and "No branch builds of o/nothing" in missing


def test_the_queue_lists_waiting_and_running_jobs(client):
    finished = stage(client, "o/app", "main", "passed")
    waiting = stage_waiting(client, "o/app", "feature/x")
    running = stage_waiting(client, "o/svc", "main", run_first=True)

    page = parse_html(client.get("/").text)
    [queue] = page.testid("queue")
    items = queue.testid("queue-item")
    described = [" ".join(i.text.split()) for i in items]
    assert len(items) == 4  # two jobs of each unfinished build; none of the finished one
    assert [i.attrs["data-status"] for i in items] == ["running", "queued", "queued", "queued"]
    assert "unit" in described[0] and "o/svc" in described[0] and "worker-7" in described[0]
    assert any(f"#{waiting}" in d and "waiting for a worker (big)" in d for d in described)
    assert any(f"#{waiting}" in d and "waiting for unit" in d and "feature/x" in d for d in described)
    assert all(f"#{finished}" not in d for d in described)
    assert queue.find_all("a", href=f"/builds/{running}")
    assert "4" in queue.find_all("span", **{"class": "count"})[0].text

    set_job_status(client, waiting, "canceled")
    set_job_status(client, running, "passed")
    page = parse_html(client.get("/").text)
    [queue] = page.testid("queue")
    assert queue.testid("queue-item") == [] and "Nothing queued or running" in queue.text


def test_an_empty_dashboard_says_how_to_start(client):
    text = client.get("/").text
    assert "No builds yet" in text and "/hooks/github" in text
    assert 'data-testid="queue"' in text and 'data-testid="repo-branch"' not in text


def test_hostile_names_and_messages_are_escaped(client):
    repo, branch = "<script>alert(1)</script>", '"><img src=x onerror=alert(2)>'
    stage(client, repo, branch, "passed", message="<b>bold</b> & more", author="<i>eve</i>")
    text = client.get("/").text
    for raw in (repo, branch, "<b>bold</b>", "<i>eve</i>", "onerror=alert(2)>"):
        assert raw not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;b&gt;bold&lt;/b&gt; &amp; more" in text
    [row] = parse_html(text).testid("repo-branch")
    assert row.attrs["data-repo"] == repo and row.attrs["data-branch"] == branch  # intact once parsed
    # the filter link quotes the names as query values
    links = [a.attrs["href"] for a in row.find_all("a") if a.attrs["href"].startswith("/builds?")]
    assert links == [
        "/builds?repo=%3Cscript%3Ealert%281%29%3C/script%3E&branch=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%282%29%3E"
    ]


def test_the_page_shares_the_layout_and_its_script_is_served(client):
    text = client.get("/").text
    page = parse_html(text)
    assert page.find_all("a", href="#main") and page.find_all("main", id="main")
    nav = page.find_all("nav")[0]
    assert [a.attrs.get("aria-current") for a in nav.find_all("a")] == ["page", None]
    assert client.get("/static/dashboard.js").headers["content-type"].startswith("text/javascript")
    css = client.get("/static/site.css").text
    assert "prefers-color-scheme: dark" in css
    for status in ("passed", "failed", "error", "running", "queued", "canceled", "skipped", "flaky"):
        assert f".st-{status} " in css


def test_durations_and_ages_read_as_people_write_them():
    assert [human_duration(s) for s in (None, 0.25, 9.94, 42, 61, 3599, 3600, 7384)] == [
        "—", "0.2s", "9.9s", "42s", "1m 01s", "59m 59s", "1h 00m", "2h 03m",
    ]  # fmt: skip
    now = 1_000_000.0
    assert [ago(now - d, now) for d in (5, 90, 3 * 3600, 86400 * 2, 86400 * 400)] == [
        "just now", "2 min ago", "3 hours ago", "2 days ago", "1 year ago",
    ]  # fmt: skip


# ---- artifacts ----

ODD = ["report.html", "dir with space/a b.txt", "hash#and?query.txt", "deep/er/100%.log", "ünï.txt"]


def test_the_artifact_partial_lists_sizes_and_quoted_links():
    macro = environment().get_template("_artifacts.html").module.artifacts  # type: ignore[attr-defined]
    items = [{"path": p, "size": s} for p, s in zip(ODD, (0, 1536, 5, 3 * 1024 * 1024, 1), strict=True)]
    html = str(macro(7, "test (os: linux/amd64)", items))
    artifacts = parse_html(html).testid("artifact")
    assert [a.attrs["data-size"] for a in artifacts] == ["0", "1536", "5", "3145728", "1"]
    hrefs = [a.find_all("a")[0].attrs["href"] for a in artifacts]
    assert hrefs == [
        "/api/builds/7/artifacts/test%20%28os%3A%20linux%2Famd64%29/report.html",
        "/api/builds/7/artifacts/test%20%28os%3A%20linux%2Famd64%29/dir%20with%20space/a%20b.txt",
        "/api/builds/7/artifacts/test%20%28os%3A%20linux%2Famd64%29/hash%23and%3Fquery.txt",
        "/api/builds/7/artifacts/test%20%28os%3A%20linux%2Famd64%29/deep/er/100%25.log",
        "/api/builds/7/artifacts/test%20%28os%3A%20linux%2Famd64%29/%C3%BCn%C3%AF.txt",
    ]
    sizes = [" ".join(a.find_all("span")[0].text.split()) for a in artifacts]
    assert sizes == ["0 Bytes", "1.5 KiB", "5 Bytes", "3.0 MiB", "1 Byte"]
    assert "No artifacts" in str(macro(7, "unit", []))


@pytest.mark.parametrize("job", ["unit", "test (os: linux/amd64)", "we#ird? job"])
def test_artifacts_with_odd_names_download_through_the_links(client, tmp_path, job):
    s = store(client)
    build_id = stage(client, "o/app", "main", "passed", jobs=(job,))
    [record] = s.jobs(build_id)
    storage = client.app.state.backends.storage  # type: ignore[attr-defined]
    for number, path in enumerate(ODD):
        source = tmp_path / f"src{number}"
        source.write_text(f"content of {path}")
        storage.put_artifact(build_id, job, path, source)
        s.artifact_stored(record.id, path, source.stat().st_size)
    macro = environment().get_template("_artifacts.html").module.artifacts  # type: ignore[attr-defined]
    listed = client.get(f"/api/builds/{build_id}").json()["jobs"][0]["artifacts"]
    html = str(macro(build_id, job, listed))
    for element in parse_html(html).testid("artifact"):
        href = element.find_all("a")[0].attrs["href"]
        assert not re.search(r"[ #?]", href)
        answer = client.get(href)
        assert answer.status_code == 200, (href, answer.text)
        assert answer.text == f"content of {element.attrs['data-path']}"
        assert int(element.attrs["data-size"]) == len(answer.content)
