"""Fuzzing the parser and the report: any input gives cases or a ReportError, never a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.reports import ReportError, TestCase, parse_junit
from runner.reports.render import render_report_html

TAGS = ["testsuites", "testsuite", "testcase", "failure", "error", "skipped", "flakyFailure", "rerunError",
        "system-out", "system-err", "properties", "property", "stackTrace", "x"]  # fmt: skip
ATTRS = ["name", "classname", "time", "timestamp", "file", "line", "message", "type", "status", "value"]
VALUES = st.one_of(
    st.sampled_from(["", "0", "-1", "1,5", "nan", "2024-01-03T 12:40:13", "fail", "disabled", "ü&<>\"'"]),
    st.text(max_size=12),
)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


@st.composite
def elements(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(st.sampled_from(TAGS))
    attrs = draw(st.dictionaries(st.sampled_from(ATTRS), VALUES, max_size=4))
    rendered = "".join(f' {k}="{_escape(v)}"' for k, v in attrs.items())
    children = draw(st.lists(elements(depth + 1), max_size=0 if depth >= 2 else 3))
    text = _escape(draw(st.text(max_size=8)))
    return f"<{tag}{rendered}>{text}{''.join(children)}</{tag}>"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(root=st.sampled_from(["testsuites", "testsuite"]), body=st.lists(elements(), max_size=3))
def test_structured_junitish_input(root: str, body: list[str]) -> None:
    xml = f"<{root}>{''.join(body)}</{root}>"
    try:
        cases = parse_junit(xml.encode("utf-8", "surrogatepass"), source="fuzz.xml")
    except ReportError as exc:
        assert str(exc).startswith("fuzz.xml: ")
        return
    assert all(case.status in ("passed", "failed", "error", "skipped", "flaky") for case in cases)
    assert all(case.time >= 0 for case in cases)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    try:
        parse_junit(data, source="bytes.xml")
    except ReportError as exc:
        assert str(exc).startswith("bytes.xml: ")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
SUMMARY_KEYS = ["status", "started_at", "finished_at", "duration", "repo", "git", "jobs", "tests"]
JOB_KEYS = ["name", "status", "allow_failure", "started_at", "duration", "attempts", "reason", "steps",
            "phases", "tests", "artifacts", "log"]  # fmt: skip


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    summary=st.dictionaries(st.sampled_from(SUMMARY_KEYS), JSON, max_size=8),
    jobs=st.lists(st.dictionaries(st.sampled_from(JOB_KEYS), JSON, max_size=12), max_size=3),
)
def test_report_renders_any_summary_shape(summary: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
    if jobs:
        summary["jobs"] = jobs
    case = TestCase(suite="s", classname="c", name="n", status="failed", message="m")
    html = render_report_html(summary, [case])
    assert html.rstrip().endswith("</html>")
