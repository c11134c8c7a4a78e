"""Every real-world JUnit file of the shared corpus parses with exact, hand-counted results."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.reports import TestCase, counts, parse_junit

# (total, passed, failed, error, skipped, flaky), counted by reading each file.
EXPECTED = {
    # badmain 1 failure; good 18 (2 skipped); parallelfails 12 (8 failed); withfails 29 (4 failed, 3 skipped)
    "go-gotestsum-multi-package.xml": (60, 42, 13, 0, 5, 0),
    "go-junit-report-pass-fail-skip.xml": (5, 2, 1, 0, 2, 0),
    "gradle-spock-failures-with-system-out.xml": (2, 0, 2, 0, 0, 0),
    # two nested cases plus the <error> placed directly in suite test.3rdlevel
    "jenkins-nested-testsuites-error-in-suite.xml": (3, 2, 0, 1, 0, 0),
    "jenkins-properties-text-and-testcase-level.xml": (2, 1, 1, 0, 0, 0),
    "jenkins-various-timestamp-formats.xml": (12, 12, 0, 0, 0, 0),
    "jest-junit-failures-and-skipped.xml": (6, 1, 4, 0, 1, 0),
    "pytest-xunit1-failure-file-line-attrs.xml": (1, 0, 1, 0, 0, 0),
    "pytest-xunit2-two-failures.xml": (3, 1, 2, 0, 0, 0),
    "surefire-flakyfailure-junit5.xml": (2, 1, 0, 0, 0, 1),
    # one <testcase>: its failure plus three rerunFailure (Surefire's tests="4" counts the reruns)
    "surefire-rerunfailure-always-fail.xml": (1, 0, 1, 0, 0, 0),
    "xunit-skipped-failure-error-xml-entities.xml": (4, 0, 1, 1, 2, 0),
}
KEYS = ("total", "passed", "failed", "error", "skipped", "flaky")


def _parse(folder: Path, name: str) -> list[TestCase]:
    return parse_junit(folder / name)


def _by_name(cases: list[TestCase], name: str) -> TestCase:
    (case,) = [c for c in cases if c.name == name]
    return case


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts_match_hand_count(shared_junit: Path, name: str) -> None:
    assert counts(_parse(shared_junit, name)) == dict(zip(KEYS, EXPECTED[name], strict=True))


def test_every_corpus_file_is_covered(shared_junit: Path) -> None:
    assert sorted(p.name for p in shared_junit.glob("*.xml")) == sorted(EXPECTED)


def test_pytest_xunit1_keeps_file_and_line(shared_junit: Path) -> None:
    (case,) = _parse(shared_junit, "pytest-xunit1-failure-file-line-attrs.xml")
    assert (case.file, case.line, case.classname, case.suite) == (
        "test_sample1.py",
        4,
        "test_sample1",
        "pytest",
    )
    # a raw newline inside an attribute value is normalised to a space by every XML parser
    assert case.message == "assert 4 == 5  +  where 4 = inc(3)"
    assert ">       assert inc(3) == 5" in case.trace


def test_surefire_flaky_failure_is_flaky_with_attempts(shared_junit: Path) -> None:
    cases = _parse(shared_junit, "surefire-flakyfailure-junit5.xml")
    flaky = _by_name(cases, "testFlaky")
    assert flaky.status == "flaky"
    assert [r.kind for r in flaky.reruns] == ["flakyFailure"] * 3 + ["flakyError"]
    assert flaky.message == "expected: <1> but was: <0>"
    assert flaky.trace.startswith("org.opentest4j.AssertionFailedError: expected: <1> but was: <0>")
    assert "Test system.err" in flaky.reruns[-1].stderr
    assert _by_name(cases, "testStable").status == "passed"


def test_surefire_reruns_that_all_failed_stay_failed(shared_junit: Path) -> None:
    (case,) = _parse(shared_junit, "surefire-rerunfailure-always-fail.xml")
    assert case.status == "failed"
    assert [r.kind for r in case.reruns] == ["rerunFailure"] * 3
    assert all(r.message == "built to fail" for r in case.reruns)
    assert case.stdout == "this will fail for real"
    assert case.stderr == "this will really fail"


def test_jenkins_nested_suites_join_names_and_keep_suite_error(shared_junit: Path) -> None:
    cases = _parse(shared_junit, "jenkins-nested-testsuites-error-in-suite.xml")
    assert [(c.suite, c.name, c.status) for c in cases] == [
        ("test.AutomatedTests / test.fs.FileSystemTest", "testPrefix", "passed"),
        ("test.AutomatedTests / test.db.DatabaseTest / test.3rdlevel", "(suite)", "error"),
        ("test.AutomatedTests / test.db.DatabaseTest", "testTable", "passed"),
    ]
    assert cases[1].message == "bla bla"
    assert cases[1].type == "java.lang.IllegalStateException"


def test_timestamps_in_every_odd_format_are_read(shared_junit: Path) -> None:
    cases = {c.name: c for c in _parse(shared_junit, "jenkins-various-timestamp-formats.xml")}
    assert cases["testOffset"].timestamp is None  # its suite has no timestamp
    assert cases["invalid if password is weak test"].timestamp == 1704284838.0  # testcase-level
    assert cases["home button redirects to home test"].timestamp == 1704285613.0  # "2024-01-03T 12:40:13"
    assert cases["testGet"].timestamp == 1704284874.0  # "2024-01-03 12:27:54Z"
    assert cases["testPopup"].timestamp == 1704240000.0  # date only
    assert cases["testResize"].timestamp == pytest.approx(1704288431.21)  # -01:00
    assert cases["testShop"].timestamp == 1704281235.0  # +01:00
    assert cases["testGet"].time == 133.01


def test_properties_and_text_valued_property(shared_junit: Path) -> None:
    cases = _parse(shared_junit, "jenkins-properties-text-and-testcase-level.xml")
    failing = _by_name(cases, "testCaseA")
    assert failing.properties == {"description": "description of test testCaseA"}
    assert failing.message == "expected: [a] but was: [b]"
    assert failing.trace == "org.junit.ComparisonFailure: expected: [a] but was: [b]"


def test_gradle_suite_output_explains_failures(shared_junit: Path) -> None:
    cases = _parse(shared_junit, "gradle-spock-failures-with-system-out.xml")
    assert all(c.stdout.startswith("A line in the given block") for c in cases)
    assert cases[0].message == "Condition not satisfied:\n\n1 == 2\n  |\n  false\n"
    assert cases[0].type == "org.spockframework.runtime.SpockComparisonFailure"


def test_xml_entities_are_decoded(shared_junit: Path) -> None:
    cases = _parse(shared_junit, "xunit-skipped-failure-error-xml-entities.xml")
    assert [c.name for c in cases] == [
        'Test with "quotes" in the test name',
        "Test with 'apostrophe' in the test name",
        "Test with & in the test name",
        "Test with < and > in the test name",
    ]
    assert cases[2].status == "error"
    assert (cases[2].message, cases[2].trace) == ("A message with &", "Content with &")
    assert cases[3].message == "A message with < and >"


def test_jest_failure_without_message_uses_first_trace_line(shared_junit: Path) -> None:
    cases = _parse(shared_junit, "jest-junit-failures-and-skipped.xml")
    failing = _by_name(cases, "Failing test")
    assert failing.message == "Error: expect(received).toBeTruthy()"
    assert failing.classname == "Test 1 \u203a Test 1.1"
    assert failing.suite == "__tests__\\main.test.js"


def test_gotestsum_escapes_and_go_junit_report_output(shared_junit: Path) -> None:
    gotestsum = _parse(shared_junit, "go-gotestsum-multi-package.xml")
    main = _by_name(gotestsum, "TestMain")
    assert (
        main.trace
        == "sometimes main can exit 2\nFAIL\tgotest.tools/gotestsum/testjson/internal/badmain\t0.001s"
    )
    assert main.timestamp is None  # Go's zero time 0001-01-01 means "unknown"
    report = _parse(shared_junit, "go-junit-report-pass-fail-skip.xml")
    assert _by_name(report, "TestPassLog").stdout.startswith("    pass_test.go:9: log line\n")
    assert _by_name(report, "TestOne").message == "Failed"
