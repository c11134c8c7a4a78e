"""The build page and its log endpoints: graph, steps, phases, escaping, paged logs, raw download,
the no-JavaScript cancel/rerun forms (real SQLite store, real Redis, the app under TestClient)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from server_helpers import TOKEN, make_repo, settings_for

from runner.server.app import create_app
from runner.server.pages.build import log_sections, phase_view, plain, selected_job
from runner.server.settings import ServerSettings
from runner.server.store import BuildPlan, JobPlan

HOSTILE = 'lint/<script>alert("x")</script> & co'
MATRIX = ["test (py: 3.11)", "test (py: 3.12)"]


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> ServerSettings:
    return settings_for(tmp_path, redis_url)


@pytest.fixture
def client(settings: ServerSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def store(client: TestClient):
    return client.app.state.service.store  # type: ignore[attr-defined]


def storage(client: TestClient):
    return client.app.state.backends.storage  # type: ignore[attr-defined]


def staged_build(client: TestClient, finish: bool = True) -> int:
    """A build of four jobs: `build`, a two-way matrix needing it, and a hostile name needing the matrix."""
    s = store(client)
    plan = BuildPlan(
        forge="github", repo="o/app", repo_url="file:///x", ref="refs/heads/main", sha="c0ffee" * 6 + "abcd",
        branch="main", author="Ada <ada@example.com>", message="Fix the <b>parser</b>\n\nlonger text",
        jobs=[JobPlan("build"), *(JobPlan(m, needs=["build"]) for m in MATRIX),
              JobPlan(HOSTILE, needs=MATRIX)],
    )  # fmt: skip
    build_id, _ = s.create_build(plan)
    jobs = {job.name: job for job in s.jobs(build_id)}
    s.start_build(build_id)
    for name, status in [
        ("build", "passed"),
        (MATRIX[0], "passed"),
        (MATRIX[1], "failed"),
        (HOSTILE, "running"),
    ]:
        job = jobs[name]
        assert s.claim_job(job.id, "tok", "w1", 60) == "claimed"
        s.step_started(job.id, 0, "compile <it>", time.time())
        s.step_finished(job.id, 0, "compile <it>", {"status": status if status != "running" else "passed",
                                                    "exit_code": 0 if status != "failed" else 3,
                                                    "reason": "exited", "duration": 1.5})  # fmt: skip
        lines = ["--- step compile <it>", f"\x1b[31mred\x1b[0m <img src=x onerror=alert(1)> {name}"]
        lines += [f"out {n}" for n in range(3)]
        for line in lines:
            storage(client).append_log(build_id, name, line + "\n")
        if status != "running" and finish:
            phases = {"clone": 0.25, "image": 0.5, "upload": 0.125, "first_line": 0.8}
            s.finish_job(job.id, "tok", status, "", 1, 2.5, phases)
    return build_id


class Collector(HTMLParser):
    """Every start tag with its attributes, and whether a <script> element appeared outside the head."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def with_testid(self, testid: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.tags if attrs.get("data-testid") == testid]


def parse(html: str) -> Collector:
    collector = Collector()
    collector.feed(html)
    return collector


def test_the_page_shows_the_build_graph_steps_phases_and_a_log_tail(client: TestClient) -> None:
    build_id = staged_build(client)
    answer = client.get(f"/builds/{build_id}")
    assert answer.status_code == 200, answer.text
    html = answer.text
    page = parse(html)
    assert re.search(r'data-testid="build-status">running<', html)
    assert "c0ffeec0ffee" in html and "Ada &lt;ada@example.com&gt;" in html and "push · github" in html
    assert f'href="/builds/{build_id}/tests"' in html
    # the graph: three nodes (the matrix is one), two edges, each job a link
    svg = html[html.index('data-testid="job-graph"') :]
    svg = svg[: svg.index("</svg>")]
    assert svg.count('class="g-node') == 3 and svg.count("<path") == 2
    assert "test \u00d72" in svg and "py: 3.11" in svg
    assert f'href="?job={quote(MATRIX[1], safe="")}#log"'.replace("%20", "+") in svg
    # steps and phases of every job
    steps = page.with_testid("step")
    assert [s["data-status"] for s in steps] == ["passed", "passed", "failed", "passed"]
    bars = page.with_testid("phases")
    assert len(bars) == 4 and bars[-1]["aria-label"] == "Where 1.5s went: steps 1.5s"  # running: steps so far
    assert "clone" in html and "first log line after" in html
    # the log: the first failed job is shown by default
    assert [a["href"] for a in page.with_testid("job-link")][2] == "?job=test+%28py%3A+3.12%29#log"
    assert [a.get("aria-current") for a in page.with_testid("job-link")] == [None, None, "true", None]
    assert re.search(
        r'<div class="log-line" data-testid="log-line" id="L2"><a class="ln" href="#L2">2</a>', html
    )
    assert len(page.with_testid("log-line")) == 5 and len(page.with_testid("log-step")) == 1
    raw = page.with_testid("log-raw")[0]["href"]
    assert raw == f"/api/builds/{build_id}/jobs/test%20%28py%3A%203.12%29/log"
    assert page.with_testid("log-raw")[0]["download"] == f"build-{build_id}-test (py: 3.12).log"
    assert client.get(raw, params={"download": 1}).headers["content-disposition"].startswith("attachment;")


def test_hostile_job_names_and_log_lines_are_escaped(client: TestClient) -> None:
    build_id = staged_build(client)
    html = client.get(f"/builds/{build_id}", params={"job": HOSTILE}).text
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>parser" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # shown as text, colour codes dropped
    assert "\x1b" not in html and ">red &lt;img" in html
    assert "Fix the &lt;b&gt;parser&lt;/b&gt;" in html
    page = parse(html)
    scripts = [attrs.get("src") for tag, attrs in page.tags if tag == "script"]
    assert scripts == ["/static/log.js", "/static/build.js"]  # no script came from the data
    [current] = [a for a in page.with_testid("job-link") if a.get("aria-current")]
    assert current["href"] == "?job=lint%2F%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E+%26+co#log"
    # every URL built from the name reaches the job: log text, lines, stream
    base = f"/api/builds/{build_id}/jobs/{quote(HOSTILE, safe='')}"
    assert client.get(base + "/log").text.endswith("out 2\n")
    assert client.get(base + "/log/lines", params={"tail": 1}).json()["lines"] == ["out 2"]
    assert client.get(f"/api/builds/{build_id}/jobs/nope%2Fjob/log/lines").status_code == 404


def test_log_lines_pages_and_tail(client: TestClient) -> None:
    build_id = staged_build(client)
    s = storage(client)
    for n in range(3000):
        s.append_log(build_id, "build", f"line {n}\n")
    url = f"/api/builds/{build_id}/jobs/build/log/lines"
    first = client.get(url, params={"start": 1, "count": 2}).json()
    assert first == {"total": 3005, "start": 1, "lines": ["--- step compile <it>", first["lines"][1]],
                     "complete": False, "step": None}  # fmt: skip
    assert client.get(url, params={"start": 3004, "count": 10}).json()["lines"] == ["line 2998", "line 2999"]
    beyond = client.get(url, params={"start": 5000}).json()
    assert (beyond["total"], beyond["start"], beyond["lines"]) == (3005, 5000, [])
    tail = client.get(url, params={"tail": 1000}).json()
    assert tail["step"] == {"line": 1, "name": "compile <it>"}
    assert tail["start"] == 2006 and len(tail["lines"]) == 1000 and tail["lines"][-1] == "line 2999"
    assert client.get(url, params={"count": 10001}).status_code == 422
    assert client.get(url, params={"start": 0}).status_code == 422
    # the page renders the tail and says how many lines came before
    html = client.get(f"/builds/{build_id}", params={"job": "build"}).text
    page = parse(html)
    assert len(page.with_testid("log-line")) == 1000
    assert page.with_testid("log-line")[0]["id"] == "L2006" and 'data-start="2006"' in html
    links = [a["href"] for tag, a in page.tags if tag == "a" and "log-load-earlier" in (a.get("class") or "")]
    assert links == ["?job=build&start=1006#log"]  # paging without JavaScript
    middle = parse(client.get(f"/builds/{build_id}", params={"job": "build", "start": 1006}).text)
    assert [a["id"] for a in middle.with_testid("log-line")][::999] == ["L1006", "L2005"]
    assert any(attrs.get("href") == "?job=build&start=2006#log" for _, attrs in middle.tags)
    refresh = parse(client.get(f"/builds/{build_id}", params={"job": "build", "log": 0}).text)
    assert refresh.with_testid("log-line") == [] and len(refresh.with_testid("step")) == 4  # build.js's view
    assert 'Lines 1\u2013<span class="log-first-missing">2005</span> are not shown.' in html


def test_raw_log_streams_the_stored_bytes(client: TestClient) -> None:
    build_id = staged_build(client)
    s = storage(client)
    chunk = ("x" * 99 + "\n") * 10000  # 1 MB
    for _ in range(3):
        s.append_log(build_id, "build", chunk)
    answer = client.get(f"/api/builds/{build_id}/jobs/build/log")
    assert answer.status_code == 200 and answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.content == s.log_path(build_id, "build").read_bytes()
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert answer.headers["content-disposition"].startswith('inline; filename="build-')
    name = client.get(f"/api/builds/{build_id}/jobs/{quote(MATRIX[0], safe='')}/log", params={"download": 1})
    assert name.headers["content-disposition"] == (
        f'attachment; filename="build-{build_id}-test (py: 3.11).log"; '
        f"filename*=UTF-8''build-{build_id}-test%20%28py%3A%203.11%29.log"
    )


def test_stream_resumes_after_a_given_line(client: TestClient) -> None:
    build_id = staged_build(client)
    storage(client).mark_log_complete(build_id, "build")
    url = f"/api/builds/{build_id}/jobs/build/log/stream"
    body = client.get(url, params={"after": 3}).text
    assert re.findall(r"^id: (\d+)$", body, re.M) == ["4", "5"] and body.endswith("event: end\ndata: {}\n\n")
    header_wins = client.get(url, params={"after": 1}, headers={"Last-Event-ID": "4"}).text
    assert re.findall(r"^id: (\d+)$", header_wins, re.M) == ["5"]


def test_cancel_and_rerun_forms_check_the_token(client: TestClient, tmp_path: Path, redis_url: str) -> None:
    repo = tmp_path / "app"
    make_repo(repo, {"ci.yml": "jobs:\n  unit:\n    steps:\n      - run: echo hi\n"})
    build_id = client.post(
        "/api/builds", json={"repo_url": f"file://{repo}", "ref": "main"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()["build_id"]  # fmt: skip
    page = client.get(f"/builds/{build_id}").text
    assert 'data-testid="cancel"' in page and 'data-testid="api-token"' in page
    url = f"/builds/{build_id}/cancel"
    missing = client.post(url, data={"token": ""}, follow_redirects=False)
    assert missing.status_code == 401 and "Enter the API token" in missing.text
    wrong = client.post(url, data={"token": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "not the server" in wrong.text and "Traceback" not in wrong.text
    assert client.get(f"/api/builds/{build_id}").json()["status"] == "queued"
    done = client.post(url, data={"token": TOKEN}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/builds/{build_id}"
    assert client.get(f"/api/builds/{build_id}").json()["status"] == "canceled"
    again = client.post(url, data={"token": TOKEN}, follow_redirects=False)
    assert again.status_code == 409 and "already finished" in again.text
    assert 'data-testid="cancel"' not in client.get(f"/builds/{build_id}").text  # nothing left to cancel
    rerun = client.post(f"/builds/{build_id}/rerun", data={"token": TOKEN}, follow_redirects=False)
    assert rerun.status_code == 303 and rerun.headers["location"] == f"/builds/{build_id + 1}"
    assert client.post("/builds/999/rerun", data={"token": TOKEN}).status_code == 404
    unset = settings_for(tmp_path / "b", redis_url, api_token=None)
    with TestClient(create_app(unset)) as other:
        other_id = staged_build(other)
        assert 'data-testid="api-token"' not in other.get(f"/builds/{other_id}").text  # no form to fill
        refused = other.post(f"/builds/{other_id}/cancel", data={"token": TOKEN})
        assert refused.status_code == 403 and "RUNNER_API_TOKEN" in refused.text
    assert client.post(url, content=b"{}", headers={"Content-Type": "application/json"}).status_code == 400


def test_artifacts_of_a_job_with_a_slash_in_its_name(client: TestClient, tmp_path: Path) -> None:
    build_id = staged_build(client)
    job = store(client).jobs(build_id)[-1]
    assert job.name == HOSTILE
    source = tmp_path / "report.txt"
    source.write_text("hello")
    storage(client).put_artifact(build_id, HOSTILE, "out/report.txt", source)
    store(client).artifact_stored(job.id, "out/report.txt", 5)
    html = client.get(f"/builds/{build_id}").text
    href = re.search(r'href="(/api/builds/\d+/artifacts/[^"]+)"', html)
    assert href is not None
    assert client.get(href.group(1).replace("&amp;", "&")).content == b"hello"


def test_a_missing_build_is_404(client: TestClient) -> None:
    assert client.get("/builds/4242").status_code == 404


# pure helpers


def test_selected_job_prefers_the_asked_then_failed_then_running() -> None:
    jobs = [{"name": "a", "status": "passed"}, {"name": "b", "status": "running"},
            {"name": "c", "status": "failed"}]  # fmt: skip
    assert selected_job(jobs, None)["name"] == "c"  # type: ignore[index]
    assert selected_job(jobs, "a")["name"] == "a"  # type: ignore[index]
    assert selected_job(jobs[:2], "zzz")["name"] == "b"  # type: ignore[index]
    assert selected_job(jobs[:1], None)["name"] == "a"  # type: ignore[index]
    assert selected_job([], None) is None


def test_a_tail_inside_a_step_continues_it() -> None:
    sections = log_sections(500, ["x", "--- step next", "y"], {"line": 2, "name": "build it"})
    assert [(s["step"], s.get("from"), [n for n, _ in s["lines"]]) for s in sections] == [
        ("build it", 2, [500]), ("next", None, [501, 502]),
    ]  # fmt: skip


def test_log_sections_split_at_step_headers() -> None:
    lines = ["--- clone 0.1s", "--- step unit tests", "ok", "--- step unit tests: passed (exited, 1.0s)",
             "--- step lint", "--- job passed"]  # fmt: skip
    sections = log_sections(10, lines)
    assert [(s["step"], [n for n, _ in s["lines"]]) for s in sections] == [
        (None, [10]), ("unit tests", [11, 12, 13]), ("lint", [14, 15]),
    ]  # fmt: skip


def test_plain_drops_escapes_and_keeps_the_last_carriage_return_rewrite() -> None:
    assert plain("\x1b[1;32mok\x1b[0m done") == "ok done"
    assert plain("10%\r50%\r100%") == "100%"
    assert plain("\x1b]0;title\x07text") == "text"


def test_phase_view_adds_steps_and_the_rest() -> None:
    job = {"duration": 10.0, "phases": {"clone": 1.0, "image": 2.0, "first_line": 3.5},
           "steps": [{"duration": 4.0}, {"duration": 1.0}]}  # fmt: skip
    view = phase_view(job)
    assert [(s["key"], s["seconds"]) for s in view["segments"]] == [
        ("clone", 1.0), ("image", 2.0), ("steps", 5.0), ("other", 2.0),
    ]  # fmt: skip
    assert sum(s["share"] for s in view["segments"]) == pytest.approx(100.0)
    assert view["first_share"] == pytest.approx(35.0)
    assert phase_view({"duration": 0, "phases": {}, "steps": []})["segments"] == []


def test_graph_columns_follow_needs_and_matrices_group() -> None:
    from runner.server.graph import layout, matrix_base

    jobs = [
        {"name": "lint", "status": "passed", "needs": []},
        {"name": "build", "status": "passed", "needs": []},
        {"name": "test (py: 3.11, os: a/b)", "status": "failed", "needs": ["build"]},
        {"name": "test (py: 3.12, os: a/b)", "status": "running", "needs": ["build"]},
        {"name": "solo (x: 1)", "status": "queued", "needs": ["lint"]},
        {"name": "deploy", "status": "queued",
         "needs": ["test (py: 3.11, os: a/b)", "test (py: 3.12, os: a/b)", "lint"]},
    ]  # fmt: skip
    graph = layout(jobs)
    nodes = {node.label: node for node in graph.nodes}
    assert list(nodes) == ["lint", "build", "test", "solo (x: 1)", "deploy"]
    assert [nodes[n].column for n in nodes] == [0, 0, 1, 1, 2]
    group = nodes["test"]
    assert group.grouped and group.status == "failed"  # the worst member
    assert [m.label for m in group.members] == ["py: 3.11, os: a/b", "py: 3.12, os: a/b"]
    assert not nodes["solo (x: 1)"].grouped  # a one-combination matrix stays one plain node
    assert nodes["deploy"].needs == ["m:test", "j:lint"] and len(graph.edges) == 4  # one edge per node pair
    assert all(edge.path.startswith("M") for edge in graph.edges)
    assert graph.width >= nodes["deploy"].x and graph.height >= group.y + group.height
    assert matrix_base("plain (not a matrix)") == ("plain (not a matrix)", "")
    # needs naming no known job, or a loop, never hang or fail the page
    odd = layout([{"name": "a", "status": "queued", "needs": ["b", "ghost"]},
                  {"name": "b", "status": "queued", "needs": ["a"]}])  # fmt: skip
    assert len(odd.nodes) == 2
    assert layout([]).nodes == []
