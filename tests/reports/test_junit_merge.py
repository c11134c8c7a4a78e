"""The merged junit.xml: valid JUnit that junitparser and our own parser read back unchanged."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from xml.etree import ElementTree

import junitparser
from junitparser import xunit2

from runner.reports import TestCase, counts, parse_junit, write_merged_junit
from runner.reports.model import Rerun

OWN_FIXTURES = [
    "node-test-reporter-junit.xml",
    "ctest-output-junit.xml",
    "pytest-xunit1.xml",
    "nested-suites.xml",
    "surefire-reruns.xml",
    "entities-and-odd-values.xml",
]


def _gather(data: Path) -> list[TestCase]:
    cases: list[TestCase] = []
    for index, name in enumerate(OWN_FIXTURES):
        for case in parse_junit(data / name):
            case.job = f"job {index % 2}"
            cases.append(case)
    return cases


def _key(case: TestCase) -> tuple[str, str, str, str]:
    return case.job, case.suite, case.classname, case.name


def test_round_trip_keeps_every_field(tmp_path: Path, data: Path) -> None:
    cases = _gather(data)
    target = tmp_path / "out" / "junit.xml"
    write_merged_junit(cases, target)
    back = parse_junit(target)
    assert counts(back) == counts(cases)
    assert sorted(map(dataclasses.asdict, back), key=str) == sorted(map(dataclasses.asdict, cases), key=str)


def test_junitparser_reads_the_same_counts(tmp_path: Path, data: Path) -> None:
    cases = _gather(data)
    target = tmp_path / "junit.xml"
    write_merged_junit(cases, target)
    total = counts(cases)
    document = junitparser.JUnitXml.fromfile(str(target))
    assert document.tests == total["total"]
    assert document.failures == total["failed"]
    assert document.errors == total["error"]
    assert document.skipped == total["skipped"]
    reread = xunit2.JUnitXml.fromfile(str(target))
    flaky = [case for suite in reread for case in suite if xunit2.TestCase.fromelem(case._elem).is_flaky]
    assert len(flaky) == total["flaky"]


def test_suites_are_grouped_and_named_by_job(tmp_path: Path) -> None:
    cases = [
        TestCase(suite="math", classname="m", name="adds", status="passed", job="unit"),
        TestCase(suite="io", classname="i", name="reads", status="failed", message="nope", job="unit"),
        TestCase(suite="math", classname="m", name="divides", status="passed", job="unit"),
        TestCase(suite="math", classname="m", name="adds", status="passed", job="e2e"),
    ]
    target = tmp_path / "junit.xml"
    write_merged_junit(cases, target)
    root = ElementTree.parse(target).getroot()
    suites = [(s.get("name"), s.get("tests"), s.get("failures")) for s in root.iter("testsuite")]
    assert suites == [("[unit] math", "2", "0"), ("[unit] io", "1", "1"), ("[e2e] math", "1", "0")]
    assert root.get("tests") == "4"


def test_text_xml_cannot_hold_is_replaced_not_fatal(tmp_path: Path) -> None:
    case = TestCase(
        suite="s",
        classname="c",
        name="bell\x07",
        status="failed",
        message="nul\x00here",
        stdout="esc\x1b[31mred",
    )
    target = tmp_path / "junit.xml"
    write_merged_junit([case], target)
    (back,) = parse_junit(target)
    assert (back.name, back.message, back.stdout) == ("bell\ufffd", "nul\ufffdhere", "esc\ufffd[31mred")


def test_flaky_without_details_still_reads_back_as_flaky(tmp_path: Path) -> None:
    cases = [
        TestCase(suite="s", classname="c", name="f", status="flaky", message="once"),
        TestCase(
            suite="s",
            classname="c",
            name="g",
            status="failed",
            message="x",
            reruns=[Rerun("rerunError", "y")],
        ),
    ]
    target = tmp_path / "junit.xml"
    write_merged_junit(cases, target)
    first, second = parse_junit(target)
    assert (first.status, first.message, [r.kind for r in first.reruns]) == (
        "flaky",
        "once",
        ["flakyFailure"],
    )
    assert (second.status, [r.kind for r in second.reruns]) == ("failed", ["rerunError"])


def test_no_cases_is_still_a_valid_file_and_no_temp_file_is_left(tmp_path: Path) -> None:
    target = tmp_path / "junit.xml"
    write_merged_junit([], target)
    assert parse_junit(target) == []
    assert [p.name for p in tmp_path.iterdir()] == ["junit.xml"]
