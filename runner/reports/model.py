"""The test-result data model shared by parsing, merging, rendering and the server: plain dataclasses."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

Status = Literal["passed", "failed", "error", "skipped", "flaky"]

#: Every case status, in the order reports list them.
STATUSES: Final[tuple[Status, ...]] = ("passed", "failed", "error", "skipped", "flaky")

#: The statuses that make a test run red.
FAILING: Final[frozenset[str]] = frozenset({"failed", "error"})


@dataclass(slots=True)
class Rerun:
    """One earlier attempt of a test that a runner (Surefire, pytest-rerunfailures...) ran again.

    ``kind`` is the element it came from: ``flakyFailure``/``flakyError`` (the test passed in the end)
    or ``rerunFailure``/``rerunError`` (every attempt failed).
    """

    kind: str
    message: str = ""
    type: str = ""
    trace: str = ""
    stdout: str = ""
    stderr: str = ""


@dataclass(slots=True)
class TestCase:
    """One test case result, whatever tool wrote it.

    ``suite`` is the path of the enclosing ``<testsuite>`` names joined with `SUITE_SEPARATOR`;
    ``message`` is one line, ``trace`` the full failure text; ``stdout``/``stderr`` come from
    ``<system-out>``/``<system-err>``; ``file``/``line`` are copied as the tool wrote them (pytest's
    ``line`` is 0-based); ``job`` is the CI job whose workspace held the report.
    """

    __test__ = False  # not a pytest test class

    suite: str
    classname: str
    name: str
    status: Status
    time: float = 0.0
    message: str = ""
    trace: str = ""
    stdout: str = ""
    stderr: str = ""
    file: str = ""
    line: int | None = None
    job: str = ""
    type: str = ""
    timestamp: float | None = None
    reruns: list[Rerun] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        """``classname.name`` (or just the name when the class is empty or already in the name)."""
        if not self.classname or self.name.startswith(self.classname):
            return self.name
        return f"{self.classname}.{self.name}"


#: Joins nested ``<testsuite>`` names into `TestCase.suite`.
SUITE_SEPARATOR: Final = " / "


def counts(cases: Iterable[TestCase]) -> dict[str, int]:
    """Totals by status: ``{"total", "passed", "failed", "error", "skipped", "flaky"}``."""
    result: dict[str, int] = {"total": 0}
    result.update(dict.fromkeys(STATUSES, 0))
    for case in cases:
        result["total"] += 1
        # A status this model does not know (a bug elsewhere) counts as an error, never a crash.
        key = case.status if case.status in result else "error"
        result[key] += 1
    return result
