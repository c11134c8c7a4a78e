"""The tests page and its JSON: real parsed JUnit files in a real store (SQLite, and PostgreSQL when
RUNNER_TEST_POSTGRES_URL is set), read back over the app the way a browser and an API client do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_helpers import settings_for
from testcase_helpers import SHARED_JUNIT, cases_by_name, dom, finished_build, junit

from runner.server.app import create_app
from runner.server.store import MAX_TEXT, BuildStore
from runner.server.testdiff import PAGE_SIZE


@pytest.fixture
def client(tmp_path: Path, redis_url: str) -> Iterator[TestClient]:
    app = create_app(settings_for(tmp_path, redis_url))
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()  # PostgreSQL counts connections: give this app's back now


@pytest.fixture
def store(client: TestClient) -> BuildStore:
    found: BuildStore = client.app.state.service.store  # type: ignore[attr-defined]
    return found


@pytest.fixture
def shared_junit() -> Path:
    if not SHARED_JUNIT.is_dir():
        pytest.skip(f"shared JUnit corpus not present at {SHARED_JUNIT} (only on the team's machines)")
    return SHARED_JUNIT


def page(client: TestClient, build_id: int, query: str = ""):  # type: ignore[no-untyped-def]
    answer = client.get(f"/builds/{build_id}/tests{query}")
    assert answer.status_code == 200, answer.text
    return dom(answer.text)


def test_failures_come_first_each_classified_against_the_previous_build(client, store):
    finished_build(store, [junit([("a", "passed"), ("b", "failed"), ("c", "failed"), ("e", "passed")])])
    finished_build(store, [junit([("a", "failed")])], branch="other")  # another branch is not compared
    latest = finished_build(
        store,
        [junit([("e", "passed"), ("d", "skipped"), ("b", "passed"), ("c", "error"), ("a", "failed")])],
    )
    cases = page(client, latest).find_all(data_testid="test-case")
    shown = [
        (c.find(data_testid="test-name").text, c.attrs["data-status"], c.attrs["data-change"]) for c in cases
    ]
    assert shown == [
        ("T.a", "failed", "new_failure"),  # failures first, new ones before old ones
        ("T.c", "error", "still_failing"),
        ("T.b", "passed", "fixed"),  # then what was fixed
        ("T.e", "passed", ""),  # then the rest, in report order
        ("T.d", "skipped", ""),
    ]
    assert all(c.tag == "details" and c.children[0].tag == "summary" for c in cases)
    assert {c.attrs["data-flaky"] for c in cases} == {"false"}
    summary = page(client, latest).find(data_testid="tests-summary")
    counts = {e.attrs["data-count"]: int(e.text) for e in summary.find_all() if "data-count" in e.attrs}
    assert counts == {"total": 5, "passed": 2, "failed": 1, "error": 1, "flaky": 0, "skipped": 1,
                      "new_failure": 1, "still_failing": 1, "fixed": 1}  # fmt: skip

    api = client.get(f"/api/builds/{latest}/tests").json()
    assert {c["name"]: c["change"] for c in api["cases"]} == {
        "T.a": "new_failure", "T.b": "fixed", "T.c": "still_failing", "T.d": None, "T.e": None,
    }  # fmt: skip
    assert api["changes"] == {"new_failure": 1, "still_failing": 1, "fixed": 1}
    for case in api["cases"]:
        assert {"suite", "name", "status", "change", "flaky", "classname", "duration"} <= set(case)


def test_message_trace_and_output_open_from_details_and_the_case_json_has_them(client, store, shared_junit):
    build_id = finished_build(store, [shared_junit / "gradle-spock-failures-with-system-out.xml"])
    cases = cases_by_name(page(client, build_id))
    case = cases["projektor.example.spock.FailingSpec.should fail with output"]
    assert case.attrs["data-status"] == "failed"
    assert case.find(data_testid="test-message").text.strip()
    assert "FailingSpec" in case.find(data_testid="test-trace").text
    output = case.find(data_testid="test-output").text
    assert output.strip()
    for element in ("test-message", "test-trace", "test-output"):  # inside the <details>, not its <summary>
        assert case.children[0].find(data_testid=element) is None
    listed = {c["name"]: c for c in client.get(f"/api/builds/{build_id}/tests").json()["cases"]}
    full = client.get(f"/api/builds/{build_id}/tests/{listed[case.find(data_testid='test-name').text]['id']}")
    assert full.status_code == 200 and full.json()["output"] == output and full.json()["trace"]
    assert client.get(f"/api/builds/{build_id}/tests/999999").status_code == 404
    assert client.get("/builds/999999/tests").status_code == 404


def test_surefire_flaky_and_rerun_elements(client, store, shared_junit):
    build_id = finished_build(
        store,
        [
            shared_junit / "surefire-flakyfailure-junit5.xml",
            shared_junit / "surefire-rerunfailure-always-fail.xml",
        ],
    )
    dom_page = page(client, build_id)
    cases = cases_by_name(dom_page)
    flaky = cases["org.acme.FlakyTest.testFlaky"]
    assert (flaky.attrs["data-status"], flaky.attrs["data-flaky"]) == ("flaky", "true")
    assert "failed attempt 1 (flakyFailure)" in flaky.find(data_testid="test-trace").text
    always = [c for name, c in cases.items() if name.startswith("io.olamy.AlwaysFailTest")]
    assert len(always) == 1 and always[0].attrs["data-status"] == "failed"
    assert always[0].attrs["data-flaky"] == "false"
    assert "rerun 3 (rerunFailure)" in always[0].find(data_testid="test-trace").text
    order = [c.attrs["data-status"] for c in dom_page.find_all(data_testid="test-case")]
    assert order == ["failed", "flaky", "passed"]  # failures, then flaky, then the rest
    api = {c["name"]: c for c in client.get(f"/api/builds/{build_id}/tests").json()["cases"]}
    assert (
        api["org.acme.FlakyTest.testFlaky"]["status"] == "flaky"
        and api["org.acme.FlakyTest.testFlaky"]["flaky"]
    )
    assert client.get(f"/api/builds/{build_id}/tests").json()["summary"]["flaky"] == 1


def test_hostile_names_and_messages_are_escaped(client, store):
    evil = '<img src=x onerror="alert(1)">'
    build_id = finished_build(
        store,
        [
            junit(
                [(evil, "failed")],
                suite="<script>alert(2)</script>",
                **{evil: ("<b>msg</b>", "</pre><script>alert(3)</script>", "<iframe src=/>")},
            )
        ],
    )
    html = client.get(f"/builds/{build_id}/tests?q=%3Cimg").text
    assert "<img src=x" not in html and "<script>alert" not in html and "<iframe" not in html
    assert "&lt;img src=x onerror=" in html and "&lt;/pre&gt;&lt;script&gt;alert(3)" in html
    [case] = page(client, build_id, "?q=%3Cimg").find_all(data_testid="test-case")
    assert case.find(data_testid="test-name").text == f"T.{evil}"
    assert case.find(data_testid="test-message").text == "<b>msg</b>"


def test_filters_work_from_the_query_string(client, store):
    finished_build(store, [junit([("a", "failed"), ("b", "failed")])])
    latest = finished_build(
        store,
        [
            junit(
                [("a", "failed"), ("b", "passed"), ("c", "failed"), ("login_ok", "passed"), ("z", "skipped")]
            )
        ],
    )

    def names(query: str) -> list[str]:
        return [
            c.find(data_testid="test-name").text
            for c in page(client, latest, query).find_all(data_testid="test-case")
        ]

    assert names("?status=failing") == ["T.c", "T.a"]
    assert names("?status=passed") == ["T.b", "T.login_ok"]
    assert names("?status=skipped") == ["T.z"]
    assert names("?change=new_failure") == ["T.c"]
    assert names("?change=fixed") == ["T.b"]
    assert names("?change=changed") == ["T.c", "T.a", "T.b"]
    assert names("?q=LOGIN") == ["T.login_ok"]
    assert names("?q=c%20broke") == ["T.c"]  # the message matches too
    assert names("?q=%25") == []  # a wildcard is taken literally
    assert names("?status=bogus&change=bogus") == names("")  # an unknown value is no filter
    form = page(client, latest, "?status=failed&q=x").find(role="search")
    assert form is not None and form.attrs["method"] == "get"


def test_passing_cases_are_paged_and_the_rest_stays_on_the_first_page(client, store):
    passing = [(f"p{i:04d}", "passed") for i in range(PAGE_SIZE * 2 + 50)]
    failing = [(f"f{i}", "failed") for i in range(3)]
    build_id = finished_build(store, [junit(passing + failing + [("fl", "passed")])])

    def shown(query: str) -> list[str]:
        return [
            c.attrs["data-status"] for c in page(client, build_id, query).find_all(data_testid="test-case")
        ]

    first = shown("")  # every failure, then passing cases up to a page
    assert first[:3] == ["failed"] * 3 and len(first) == PAGE_SIZE and set(first[3:]) == {"passed"}
    assert len(shown("?page=2")) == PAGE_SIZE and set(shown("?page=2")) == {"passed"}
    assert len(shown("?page=3")) == len(passing) + 1 - (PAGE_SIZE - 3) - PAGE_SIZE and shown("?page=4") == []
    names = [c.find(data_testid="test-name").text for p in ("", "?page=2", "?page=3")
             for c in page(client, build_id, p).find_all(data_testid="test-case")]  # fmt: skip
    assert len(names) == len(set(names)) == len(passing) + 4  # each case on exactly one page
    next_link = page(client, build_id).find(rel="next")
    assert next_link is not None and next_link.attrs["href"] == f"/builds/{build_id}/tests?page=2"
    assert len(client.get(f"/api/builds/{build_id}/tests").json()["cases"]) == len(passing) + 4
    assert client.get(f"/builds/{build_id}/tests?page=0").status_code == 422


def test_slowest_tests_and_per_suite_counts(client, store):
    one = (
        b"""<testsuites>
<testsuite name="alpha"><testcase classname="A" name="slow" time="9.5"/>
<testcase classname="A" name="bad" time="0.2"><failure message="no">x</failure></testcase>
<testcase classname="A" name="skip"><skipped/></testcase></testsuite>
<testsuite name="beta">"""
        + b"".join(f'<testcase classname="B" name="t{i}" time="{i / 10}"/>'.encode() for i in range(15))
        + b"</testsuite></testsuites>"
    )
    build_id = finished_build(store, [one])
    doc = page(client, build_id)
    slowest = doc.find(data_testid="slowest")
    rows = [r for r in slowest.find_all() if r.tag == "tr"][1:]
    assert len(rows) == 10
    assert "A.slow" in rows[0].text and "9.500 s" in rows[0].text and "B.t14" in rows[1].text
    suites = {
        r.attrs["data-suite"]: r for r in doc.find(data_testid="suites").find_all() if "data-suite" in r.attrs
    }
    assert set(suites) == {"alpha", "beta"}
    cells = [td.text.strip() for td in suites["alpha"].children if td.tag == "td"]
    assert cells[1:4] == ["1", "1", "1"]  # passed, failed, skipped
    assert [td.text.strip() for td in suites["beta"].children if td.tag == "td"][1:4] == ["15", "0", "0"]


def test_trace_and_output_are_bounded_in_the_store(client, store):
    huge = "x" * (MAX_TEXT * 3)
    build_id = finished_build(
        store, [junit([("big", "failed")], big=("m" * 5000, huge, "o" * (MAX_TEXT + 10) + "END"))]
    )
    [case] = client.get(f"/api/builds/{build_id}/tests").json()["cases"]
    full = client.get(f"/api/builds/{build_id}/tests/{case['id']}").json()
    assert len(full["message"]) == 2000
    assert full["trace"].startswith("x" * 100) and len(full["trace"]) < MAX_TEXT + 100
    assert "more characters not stored" in full["trace"]
    assert full["output"].endswith("END") and "earlier characters not stored" in full["output"]
    assert len(full["output"]) < MAX_TEXT + 100


def test_a_build_without_tests_says_so(client, store):
    build_id = finished_build(store, [], status="passed")
    answer = client.get(f"/builds/{build_id}/tests")
    assert answer.status_code == 200 and "No test results" in answer.text
    assert dom(answer.text).find(data_testid="tests-summary") is not None


def test_a_build_with_many_suites_lists_the_failing_ones_first_and_says_how_many(client, store):
    suites = b"".join(
        f'<testsuite name="suite{i:03d}"><testcase classname="S" name="t{i}">'
        f"{'<failure/>' if i == 117 else ''}</testcase></testsuite>".encode()
        for i in range(120)
    )
    build_id = finished_build(store, [b"<testsuites>" + suites + b"</testsuites>"])
    doc = page(client, build_id)
    rows = [
        r.attrs["data-suite"] for r in doc.find(data_testid="suites").find_all() if "data-suite" in r.attrs
    ]
    assert len(rows) == 100 and rows[0] == "suite117" and rows[1] == "suite000"
    assert "The first 100 of 120 suites" in doc.find(data_testid="suites").text


def test_an_id_past_the_database_s_integers_is_refused_not_an_error(client):
    assert client.get(f"/builds/{2**31}/tests").status_code == 422
    assert client.get(f"/builds/{2**31 - 1}/tests").status_code == 404
