"""A job with `retry: 1` whose first attempt fails a test that then passes: the test is flaky, end to
end (real engine in a real container, worker, store, the tests page and its JSON), and the secret
its failure printed stays masked in the trace and output kept from the failed attempt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import github_push, make_repo
from stack import Stack
from testcase_helpers import cases_by_name, dom

pytestmark = pytest.mark.kernel

SECRET_VALUE = "hunter2-very-secret-value"

FAILING = """<testsuite name="unit">
<testcase classname="t" name="sometimes" time="0.5">
<failure message="timeout talking to KEY">stack mentions KEY</failure>
<system-out>printed KEY</system-out></testcase>
<testcase classname="t" name="steady"/></testsuite>
"""
PASSING = """<testsuite name="unit">
<testcase classname="t" name="sometimes" time="0.1"/><testcase classname="t" name="steady"/></testsuite>
"""
# The attempt number is the deterministic switch: attempt 1 writes a failing report and fails the step.
CI = """\
jobs:
  unit:
    retry: 1
    secrets: [API_KEY]
    steps:
      - name: tests
        run: |
          mkdir -p reports
          if [ "$RUNNER_ATTEMPT" = 1 ]; then
            sed "s/KEY/$API_KEY/g" failing.xml > reports/junit.xml
            exit 1
          fi
          cp passing.xml reports/junit.xml
    reports: {junit: ["reports/*.xml"]}
"""


@pytest.fixture
def stack(tmp_path: Path, redis_url: str) -> Iterator[Stack]:
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"API_KEY={SECRET_VALUE}\n")
    stack = Stack(tmp_path, redis_url, RUNNER_SECRETS_FILE=str(secrets))
    try:
        stack.start_server()
        stack.start_worker("w1")
        yield stack
    finally:
        stack.stop()


def test_a_test_that_failed_then_passed_on_retry_is_flaky(stack, tmp_path):
    repo = tmp_path / "project"
    sha = make_repo(repo, {"ci.yml": CI, "failing.xml": FAILING, "passing.xml": PASSING})
    answer = stack.push(github_push(repo, sha))
    assert answer.status_code == 202, answer.text
    build_id = answer.json()["build_id"]
    build = stack.wait_build(build_id, timeout=120)
    [job] = build["jobs"]
    assert build["status"] == "passed", build
    assert job["tests"]["flaky"] == 1 and job["tests"]["passed"] == 1 and job["tests"]["failed"] == 0

    tests = stack.client.get(f"/api/builds/{build_id}/tests").json()
    cases = {c["name"]: c for c in tests["cases"]}
    assert (cases["t.sometimes"]["status"], cases["t.sometimes"]["flaky"]) == ("flaky", True)
    assert (cases["t.steady"]["status"], cases["t.steady"]["flaky"]) == ("passed", False)
    assert tests["summary"]["flaky"] == 1
    full = stack.client.get(f"/api/builds/{build_id}/tests/{cases['t.sometimes']['id']}").json()
    assert full["message"] == "timeout talking to ***"
    assert "failed attempt 1 (flakyFailure)" in full["trace"] and "stack mentions ***" in full["trace"]
    assert "printed ***" in full["output"]

    html = stack.client.get(f"/builds/{build_id}/tests").text
    assert SECRET_VALUE not in html and SECRET_VALUE not in str(tests) and SECRET_VALUE not in str(full)
    shown = cases_by_name(dom(html))
    flaky = shown["t.sometimes"]
    assert (flaky.attrs["data-status"], flaky.attrs["data-flaky"]) == ("flaky", "true")
    assert "stack mentions ***" in flaky.find(data_testid="test-trace").text
    assert "printed ***" in flaky.find(data_testid="test-output").text
    assert [m.attrs["data-status"] for m in flaky.find(data_testid="test-history").children] == ["flaky"]
    assert list(shown) == ["t.sometimes", "t.steady"]  # flaky before the rest
