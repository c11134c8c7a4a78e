"""A retried job's tests: what failed in an earlier attempt and passed in the last one is flaky."""

from __future__ import annotations

from runner.reports import TestCase, counts
from runner.reports.retries import mark_retried


def case(name: str, status: str, message: str = "", trace: str = "", job: str = "unit") -> TestCase:
    return TestCase(suite="s", classname="C", name=name, status=status, message=message, trace=trace, job=job)  # type: ignore[arg-type]


def test_a_test_that_failed_before_and_passes_now_is_flaky_with_the_failed_attempt_kept():
    first = [
        case("a", "failed", "boom", "trace a"),
        case("b", "passed"),
        case("c", "error", "oops", "trace c"),
    ]
    last = [case("a", "passed"), case("b", "passed"), case("c", "error", "oops again")]
    assert mark_retried(last, [first]) == 1
    a, b, c = last
    assert (a.status, a.message, a.trace) == ("flaky", "boom", "trace a")
    assert [(r.kind, r.message, r.trace) for r in a.reruns] == [("flakyFailure", "boom", "trace a")]
    assert (b.status, b.reruns) == ("passed", [])
    assert c.status == "error" and [r.kind for r in c.reruns] == ["rerunError"]  # failed every time
    assert counts(last) == {"total": 3, "passed": 1, "failed": 0, "error": 1, "skipped": 0, "flaky": 1}


def test_every_failed_attempt_is_kept_and_other_jobs_or_suites_do_not_match():
    one, two = [case("a", "failed", "first")], [case("a", "error", "second")]
    last = [case("a", "passed"), case("a", "passed", job="other")]
    assert mark_retried(last, [one, two]) == 1
    assert [(r.kind, r.message) for r in last[0].reruns] == [
        ("flakyFailure", "first"),
        ("flakyError", "second"),
    ]
    assert last[1].status == "passed"
    skipped = [case("a", "skipped")]
    assert mark_retried(skipped, [one]) == 0 and skipped[0].reruns == []


def test_no_earlier_attempts_change_nothing():
    last = [case("a", "passed"), case("b", "failed")]
    assert mark_retried(last, []) == 0 and [c.status for c in last] == ["passed", "failed"]
