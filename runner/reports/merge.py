"""Writing every collected case into one JUnit XML file (the run's ``junit.xml``), with junitparser.

Cases are grouped into one ``<testsuite>`` per (job, suite); the suite is named ``[job] suite`` so other
tools show where a test ran, and carries ``runner.job``/``runner.suite`` properties so
`runner.reports.junit` reads the file back with job and suite as they were. Flaky cases are written the
Surefire way (a passing case with ``<flakyFailure>`` children), so every JUnit reader counts them as passed.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from runner.reports.junit import JOB_PROPERTY, SUITE_PROPERTY
from runner.reports.model import Rerun, TestCase, counts

if TYPE_CHECKING:
    from junitparser import xunit2

# Characters XML 1.0 cannot carry at all (controls other than tab/newline/CR, lone surrogates, U+FFFE/F).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def write_merged_junit(cases: Iterable[TestCase], path: Path) -> None:
    """Write ``cases`` as one JUnit XML file at ``path`` (atomically: a reader never sees half a file)."""
    from junitparser import xunit2

    document = xunit2.JUnitXml(name="runner")
    groups: dict[tuple[str, str], list[TestCase]] = {}
    for case in cases:
        groups.setdefault((case.job, case.suite), []).append(case)
    everything: list[TestCase] = []
    for (job, suite_name), members in groups.items():
        suite = _new_suite(job, suite_name)
        for case in members:
            suite.append(_to_element(case))
        _set_statistics(suite, members)
        document.append(suite)  # append, not add_testsuite: that one merges suites it thinks equal
        everything.extend(members)
    _set_statistics(document, everything)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".junit-", suffix=".xml", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            document.write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _set_statistics(owner: xunit2.TestSuite | xunit2.JUnitXml, members: list[TestCase]) -> None:
    """The usual JUnit totals, from our statuses (junitparser's own recount is quadratic-ish and slow).

    Flaky cases passed in the end, so JUnit readers count them as passed, like Surefire does.
    """
    totals = counts(members)
    owner.tests = totals["total"]
    owner.failures = totals["failed"]
    owner.errors = totals["error"]
    owner.skipped = totals["skipped"]
    owner.time = round(sum(case.time for case in members), 6)


def _new_suite(job: str, suite_name: str) -> xunit2.TestSuite:
    from junitparser import xunit2

    shown = f"[{job}] {suite_name}" if job else suite_name
    suite = xunit2.TestSuite(_xml(shown) or "(no suite)")
    if job:
        suite.add_property(JOB_PROPERTY, _xml(job))
    suite.add_property(SUITE_PROPERTY, _xml(suite_name))
    return suite


def _to_element(case: TestCase) -> xunit2.TestCase:
    from junitparser import Error, Failure, Skipped, SystemErr, SystemOut, xunit2

    element = xunit2.TestCase(_xml(case.name), _xml(case.classname), case.time)
    result: Failure | Error | Skipped | None = None
    if case.status == "failed":
        result = Failure(_xml(case.message), _xml(case.type))
    elif case.status == "error":
        result = Error(_xml(case.message), _xml(case.type))
    elif case.status == "skipped":
        result = Skipped(_xml(case.message), _xml(case.type))
    if result is not None:
        if case.trace:
            result.text = _xml(case.trace)
        element.append(result)
    reruns = list(case.reruns)
    if case.status == "flaky" and not reruns:  # flaky with no detail still has to read back as flaky
        reruns = [Rerun("flakyFailure", case.message, case.type, case.trace)]
    for rerun in reruns:
        element.append(_interim(rerun, flaky=case.status == "flaky"))
    if case.stdout:
        element.append(SystemOut(_xml(case.stdout)))
    if case.stderr:
        element.append(SystemErr(_xml(case.stderr)))
    if case.file:
        element._elem.set("file", _xml(case.file))
    if case.timestamp is not None:
        moment = datetime.fromtimestamp(case.timestamp, UTC)
        element._elem.set("timestamp", moment.isoformat(timespec="microseconds"))
    if case.line is not None:
        element._elem.set("line", str(case.line))
    for name, value in case.properties.items():
        element.add_property(_xml(name), _xml(value))
    return element


def _interim(rerun: Rerun, *, flaky: bool) -> xunit2.InterimResult:
    from junitparser import xunit2

    is_error = rerun.kind.endswith("Error")
    kinds: dict[tuple[bool, bool], type[xunit2.InterimResult]] = {
        (True, False): xunit2.FlakyFailure,
        (True, True): xunit2.FlakyError,
        (False, False): xunit2.RerunFailure,
        (False, True): xunit2.RerunError,
    }
    result = kinds[(flaky, is_error)](_xml(rerun.message), _xml(rerun.type))
    if rerun.trace:
        result.stack_trace = _xml(rerun.trace)
    if rerun.stdout:
        result.system_out = _xml(rerun.stdout)
    if rerun.stderr:
        result.system_err = _xml(rerun.stderr)
    return result


def _xml(text: str) -> str:
    """``text`` with characters XML cannot hold replaced by U+FFFD (test output can hold anything)."""
    return _NOT_XML.sub("\ufffd", text) if text else text
