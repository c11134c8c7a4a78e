"""JUnit/xUnit XML → `TestCase` list, for every dialect CI users meet, after a safe parse.

One walker covers them all: Ant/Surefire/Gradle (one ``<testsuite>`` root), ``<testsuites>`` from
pytest, Jest, Go tools and CTest, ``node --test`` (``<testcase>`` straight under ``<testsuites>``),
``<testsuite>`` nested in ``<testsuite>`` (names joined into a path), an ``<error>`` placed directly
in a suite (Jenkins), Surefire's ``flakyFailure``/``flakyError`` (→ ``flaky``) and
``rerunFailure``/``rerunError`` (kept as reruns; a test whose every attempt failed stays ``failed``),
and CTest's ``status="disabled"`` without a ``<skipped>`` child. The bytes are parsed by
`runner.reports.safexml`; junitparser's xunit2 classes then read each element.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Final
from xml.etree.ElementTree import Element

from runner.reports.errors import ReportError
from runner.reports.model import SUITE_SEPARATOR, Rerun, Status, TestCase
from runner.reports.safexml import MAX_REPORT_BYTES, parse_untrusted, read_capped
from runner.reports.values import parse_line, parse_seconds, parse_timestamp

if TYPE_CHECKING:
    from junitparser import xunit2

#: Suite properties `runner.reports.merge` writes so a merged file reads back with job and suite intact.
JOB_PROPERTY: Final = "runner.job"
SUITE_PROPERTY: Final = "runner.suite"

#: Deeper ``<testsuite>`` nesting than this is refused (suite paths would grow quadratically).
MAX_SUITE_DEPTH: Final = 200

_SKIPPED_STATUS: Final = frozenset({"notrun", "disabled", "skip", "skipped", "ignored", "pending"})
_FAILED_STATUS: Final = frozenset({"fail", "failed", "failure"})
_ERROR_STATUS: Final = frozenset({"error", "errored"})


@dataclass(slots=True)
class _Suite:
    """What a ``<testsuite>`` passes down to the cases and suites inside it."""

    path: str = ""
    job: str = ""
    stdout: str = ""
    stderr: str = ""
    file: str = ""
    timestamp: float | None = None
    depth: int = 0
    names: list[str] = field(default_factory=list)


def parse_junit(
    path_or_bytes: Path | str | bytes, *, source: str | None = None, max_bytes: int = MAX_REPORT_BYTES
) -> list[TestCase]:
    """Every test case in one JUnit/xUnit report, in document order.

    ``path_or_bytes`` is a file path or the file's bytes; ``source`` names it in errors (default: the
    path, or ``<report>`` for bytes). Raises `ReportError` for an unsafe, oversized, malformed or
    non-JUnit file; never any other exception for bad input.
    """
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        name = source or "<report>"
        data = bytes(path_or_bytes)
    else:
        name = source or str(path_or_bytes)
        data = read_capped(Path(path_or_bytes), name, max_bytes)
    root = parse_untrusted(data, name, max_bytes)
    if root.tag not in ("testsuites", "testsuite"):
        expected = "expected <testsuites> or <testsuite>"
        raise ReportError(name, f"not a JUnit report: the root element is <{root.tag}>, {expected}")
    try:
        return list(_walk(root, name))
    except ReportError:
        raise
    except Exception as exc:  # junitparser on input nobody foresaw: still one clear line for the user
        raise ReportError(name, f"cannot read the report: {type(exc).__name__}: {exc}") from None


def _walk(root: Element, source: str) -> Iterator[TestCase]:
    """Cases in document order, walking nested suites with an explicit stack (no recursion limit)."""
    from junitparser import xunit2

    top = _Suite(path=root.get("name") or PurePath(source).name if root.tag == "testsuites" else "")
    children: Iterator[Element] = iter([root]) if root.tag == "testsuite" else iter(root)
    stack: list[tuple[Iterator[Element], _Suite]] = [(children, top)]
    while stack:
        siblings, parent = stack[-1]
        elem = next(siblings, None)
        if elem is None:
            stack.pop()
            continue
        if elem.tag == "testsuite":
            suite = _enter_suite(xunit2.TestSuite.fromelem(elem), parent, source)
            stack.append((iter(elem), suite))
        elif elem.tag == "testcase":
            yield _case(xunit2.TestCase.fromelem(elem), parent)
        elif elem.tag in ("error", "failure") and parent.depth > 0:
            yield _suite_result(elem, parent)


def _enter_suite(suite: xunit2.TestSuite, parent: _Suite, source: str) -> _Suite:
    elem = suite._elem
    depth = parent.depth + 1
    if depth > MAX_SUITE_DEPTH:
        raise ReportError(source, f"refused: <testsuite> elements nested more than {MAX_SUITE_DEPTH} deep")
    name = elem.get("name") or ""
    props = _properties(suite)
    path = SUITE_SEPARATOR.join(part for part in (parent.path if parent.depth else "", name) if part)
    return _Suite(
        path=props.get(SUITE_PROPERTY, path),
        job=props.get(JOB_PROPERTY, parent.job),
        stdout=_texts(elem, "system-out") or parent.stdout,
        stderr=_texts(elem, "system-err") or parent.stderr,
        file=elem.get("file") or parent.file,
        timestamp=parse_timestamp(elem.get("timestamp")) or parent.timestamp,
        depth=depth,
        names=[*parent.names, name],
    )


def _case(case: xunit2.TestCase, suite: _Suite) -> TestCase:
    elem = case._elem
    if len(elem) == 0:  # the common passing case: nothing below it to interpret
        return TestCase(
            suite=suite.path,
            classname=elem.get("classname") or "",
            name=elem.get("name") or "(unnamed)",
            status=_status_attribute(elem.get("status")),
            time=parse_seconds(elem.get("time")),
            file=elem.get("file") or suite.file,
            line=parse_line(elem.get("line")),
            job=suite.job,
            timestamp=parse_timestamp(elem.get("timestamp")) or suite.timestamp,
        )
    from junitparser import Error, Failure, Skipped

    results = case.result
    reruns = [_rerun(r) for r in case.interim_result]
    status: Status
    primary: Any = None
    checks: tuple[tuple[type, Status], ...] = ((Error, "error"), (Failure, "failed"), (Skipped, "skipped"))
    for kind, label in checks:
        found = [r for r in results if isinstance(r, kind)]
        if found:
            status, primary = label, found[0]
            break
    else:
        status = "flaky" if reruns else _status_attribute(elem.get("status"))

    message = trace = error_type = ""
    if primary is not None:
        trace = _trace(primary.text)
        message = primary.message or _first_line(trace)
        error_type = primary.type or ""
    elif status == "flaky":
        message, trace, error_type = reruns[0].message, reruns[0].trace, reruns[0].type

    stdout = _texts(elem, "system-out")
    stderr = _texts(elem, "system-err")
    if status in ("failed", "error", "flaky"):  # suite-level output explains the cases that need it
        stdout = stdout or suite.stdout
        stderr = stderr or suite.stderr
    return TestCase(
        suite=suite.path,
        classname=elem.get("classname") or "",
        name=elem.get("name") or "(unnamed)",
        status=status,
        time=parse_seconds(elem.get("time")),
        message=message,
        trace=trace,
        stdout=stdout,
        stderr=stderr,
        file=elem.get("file") or suite.file,
        line=parse_line(elem.get("line")),
        job=suite.job,
        type=error_type,
        timestamp=parse_timestamp(elem.get("timestamp")) or suite.timestamp,
        reruns=reruns,
        properties=_properties(case),
    )


def _suite_result(elem: Element, suite: _Suite) -> TestCase:
    """An ``<error>``/``<failure>`` placed directly in a suite (a class setup that failed, say)."""
    trace = _trace(elem.text)
    return TestCase(
        suite=suite.path,
        classname=suite.names[-1] if suite.names else "",
        name="(suite)",
        status="error" if elem.tag == "error" else "failed",
        message=elem.get("message") or _first_line(trace),
        trace=trace,
        stdout=suite.stdout,
        stderr=suite.stderr,
        file=suite.file,
        job=suite.job,
        type=elem.get("type") or "",
        timestamp=suite.timestamp,
    )


def _rerun(result: xunit2.InterimResult) -> Rerun:
    trace = _trace(result.stack_trace) or _trace(result.text)
    return Rerun(
        kind=result._elem.tag,
        message=result.message or _first_line(trace),
        type=result.type or "",
        trace=trace,
        stdout=_clean(result.system_out),
        stderr=_clean(result.system_err),
    )


def _status_attribute(value: str | None) -> Status:
    """CTest and a few others say it with ``status="..."`` instead of a child element."""
    word = (value or "").strip().lower()
    if word in _FAILED_STATUS:
        return "failed"
    if word in _ERROR_STATUS:
        return "error"
    if word in _SKIPPED_STATUS:
        return "skipped"
    return "passed"


def _properties(owner: xunit2.TestSuite | xunit2.TestCase) -> dict[str, str]:
    """``<properties>`` of a suite or case; a property's text stands in for a missing ``value``."""
    props = owner._elem.find("properties")
    result: dict[str, str] = {}
    if props is None:
        return result
    for prop in props.iterfind("property"):
        name = prop.get("name")
        if name:
            value = prop.get("value")
            result[name] = value if value is not None else (prop.text or "").strip()
    return result


def _texts(elem: Element, tag: str) -> str:
    """The joined text of every direct ``tag`` child (some tools write several ``<system-out>``)."""
    return "\n".join(text for child in elem.iterfind(tag) if (text := _clean(child.text)))


def _clean(text: str | None) -> str:
    """Report text without the blank lines and trailing whitespace that indentation leaves behind."""
    if not text:
        return ""
    return text.strip("\n").rstrip()


def _trace(text: str | None) -> str:
    """A failure text without the indentation the XML around it added."""
    return textwrap.dedent(_clean(text))


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
