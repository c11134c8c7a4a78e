"""Runs the unit tests with the standard library and writes a JUnit XML report (no pytest needed)."""

from __future__ import annotations

import argparse
import sys
import time
import traceback
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def _trace(err: Any) -> str:
    return "".join(traceback.format_exception(*err))


class JUnitResult(unittest.TextTestResult):
    """A text result that also remembers each test's outcome and duration."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cases: list[tuple[unittest.TestCase, str, str, float]] = []  # outcome, message, seconds
        self._started = 0.0

    def startTest(self, test: unittest.TestCase) -> None:
        self._started = time.monotonic()
        super().startTest(test)

    def _record(self, test: unittest.TestCase, outcome: str, message: str = "") -> None:
        self.cases.append((test, outcome, message, time.monotonic() - self._started))

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self._record(test, "failure", _trace(err))

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self._record(test, "error", _trace(err))

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)


def write_junit(result: JUnitResult, path: Path) -> None:
    suite = ET.Element("testsuite", name="hello", tests=str(len(result.cases)))
    for key, outcome in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
        suite.set(key, str(sum(1 for case in result.cases if case[1] == outcome)))
    for test, outcome, message, seconds in result.cases:
        classname, _, name = test.id().rpartition(".")
        case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")
        if outcome != "passed":
            detail = ET.SubElement(case, outcome, message=message.strip().splitlines()[-1] if message else "")
            detail.text = message
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--junit", type=Path, help="write a JUnit XML report here")
    args = parser.parse_args()
    tests = unittest.defaultTestLoader.discover("tests", top_level_dir=".")
    result = unittest.TextTestRunner(resultclass=JUnitResult, verbosity=2, stream=sys.stdout).run(tests)
    assert isinstance(result, JUnitResult)
    if args.junit:
        write_junit(result, args.junit)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
