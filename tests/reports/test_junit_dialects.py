"""Dialects beyond the shared corpus, from this project's own fixtures (tests/reports/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.reports import TestCase, counts, parse_junit

KEYS = ("total", "passed", "failed", "error", "skipped", "flaky")


def _counts(cases: list[TestCase]) -> tuple[int, ...]:
    found = counts(cases)
    return tuple(found[key] for key in KEYS)


def _one(cases: list[TestCase], name: str) -> TestCase:
    (case,) = [c for c in cases if c.name == name]
    return case


def test_node_test_reporter_cases_directly_under_testsuites(data: Path) -> None:
    cases = parse_junit(data / "node-test-reporter-junit.xml")
    assert _counts(cases) == (7, 3, 2, 0, 2, 0)
    # top-level cases belong to no <testsuite>: they are grouped under the report's file name
    assert _one(cases, "adds numbers").suite == "node-test-reporter-junit.xml"
    assert _one(cases, "throws").suite == "math / division"
    assert _one(cases, "throws").message == "boom"
    assert _one(cases, "todo one").message == "later"
    mismatch = _one(cases, "compares <b>strings</b> & &quot;quotes&quot;")  # node double-escapes quotes
    assert mismatch.status == "failed"
    assert "'ab' !== 'abc'" in mismatch.trace


def test_ctest_status_attribute_and_disabled_tests(data: Path) -> None:
    cases = parse_junit(data / "ctest-output-junit.xml")
    assert _counts(cases) == (5, 1, 2, 0, 2, 0)
    assert _one(cases, "disabled_one").status == "skipped"  # status="disabled", no <skipped> child
    assert _one(cases, "skips").message == "SKIP_RETURN_CODE=77"
    failing = _one(cases, "fails")
    assert failing.stdout == "expected 3 < 4 & got 5"
    assert failing.message == ""
    assert _one(cases, "times_out").time == pytest.approx(0.501888)


@pytest.mark.parametrize("name", ["pytest-xunit1.xml", "pytest-xunit2.xml"])
def test_pytest_families(data: Path, name: str) -> None:
    cases = parse_junit(data / name)
    assert _counts(cases) == (7, 3, 1, 1, 2, 0)
    error = _one(cases, "test_error")
    assert error.status == "error"
    assert error.message == 'failed on setup with "RuntimeError: fixture <broke>"'
    assert _one(cases, "test_xfail").status == "skipped"
    assert _one(cases, "test_fails").message.startswith("AssertionError: lists differ & that's <bad>\n")
    assert [c.name for c in cases if c.name.startswith("test_param")] == ["test_param[1]", "test_param[2]"]
    expected_line = 11 if name == "pytest-xunit1.xml" else None  # xunit1 only; pytest counts from 0
    assert _one(cases, "test_fails").line == expected_line


def test_nested_suites_build_a_path_and_suite_errors_become_cases(data: Path) -> None:
    cases = parse_junit(data / "nested-suites.xml")
    assert _counts(cases) == (6, 3, 1, 1, 1, 0)
    assert [(c.suite, c.name) for c in cases] == [
        ("outer", "top level case"),
        ("outer / middle", "passes quietly"),
        ("outer / middle", "fails loudly"),
        ("outer / middle / inner", "(suite)"),
        ("outer / middle / inner", "never really ran"),
        ("sibling", "alone"),
    ]
    suite_error = cases[3]
    assert (suite_error.status, suite_error.message, suite_error.type) == (
        "error",
        "setUpClass exploded",
        "RuntimeError",
    )
    assert suite_error.classname == "inner"
    # suite-level output is attached to the cases that need explaining, not to passing ones
    assert _one(cases, "fails loudly").stdout == "printed while the middle suite ran"
    assert _one(cases, "passes quietly").stdout == ""
    assert _one(cases, "never really ran").timestamp == 1740823200.0


def test_every_surefire_rerun_shape(data: Path) -> None:
    cases = parse_junit(data / "surefire-reruns.xml")
    assert _counts(cases) == (5, 1, 1, 1, 0, 2)
    once = _one(cases, "passesAfterOneFailure")
    assert (once.status, once.message, once.type) == ("flaky", "timing was off", "java.lang.AssertionError")
    assert once.reruns[0].stdout == "attempt 1 output"
    errors = _one(cases, "passesAfterAnError")
    assert errors.status == "flaky"
    assert [r.message for r in errors.reruns] == ["connection reset", "connection reset again"]
    assert errors.reruns[0].stderr == "socket closed"
    always = _one(cases, "alwaysFails")
    assert (always.status, always.message) == ("failed", "still broken")
    assert [r.kind for r in always.reruns] == ["rerunFailure", "rerunFailure"]
    assert always.reruns[1].trace == "java.lang.AssertionError: still broken (rerun 2)"
    assert _one(cases, "alwaysErrors").status == "error"
    assert _one(cases, "alwaysErrors").reruns[0].kind == "rerunError"


def test_entities_cdata_and_odd_values(data: Path) -> None:
    cases = parse_junit(data / "entities-and-odd-values.xml")
    assert _counts(cases) == (6, 5, 1, 0, 0, 0)
    odd = cases[0]
    assert odd.suite == "Odd & Ends"
    assert odd.name == 'a <b> & "c" \U0001f600'
    assert odd.message == "got <script>alert(1)</script> & more\nsecond line"
    assert odd.trace == "raw <tags> & ]]> kept"
    assert odd.time == 1234.5
    assert odd.properties == {"owner": "team-a"}
    assert odd.timestamp == 1704285613.0  # the suite's "2024-01-03T 12:40:13"
    assert _one(cases, "decimal comma").time == 0.5
    assert _one(cases, "decimal comma").timestamp == 1704284874.0
    assert _one(cases, "bad time").time == 0.0
    assert _one(cases, "negative time").time == 0.0
    assert (_one(cases, "line attrs").file, _one(cases, "line attrs").line) == ("src/odd.py", 42)
    assert _one(cases, "bad line").line is None


def test_namespaced_elements_read_like_plain_ones(data: Path) -> None:
    cases = parse_junit(data / "namespaced.xml")
    assert [(c.name, c.status) for c in cases] == [("one", "passed"), ("two", "failed")]


def test_bytes_input_and_single_testsuite_root() -> None:
    xml = b'<testsuite name="solo"><testcase name="a" classname="k" time="0.1"/></testsuite>'
    (case,) = parse_junit(xml, source="inline.xml")
    assert (case.suite, case.classname, case.name, case.status, case.time) == (
        "solo",
        "k",
        "a",
        "passed",
        0.1,
    )


def test_utf16_report_with_declaration() -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?><testsuite name="é"><testcase name="ü"/></testsuite>'
    (case,) = parse_junit(text.encode("utf-16"))
    assert (case.suite, case.name) == ("é", "ü")


def test_empty_testsuites_has_no_cases() -> None:
    assert parse_junit(b"<testsuites/>") == []
