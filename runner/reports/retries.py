"""Test cases of a job that was retried (`retry:` in ci.yml): a test that failed in an earlier attempt
and passed in the last one is flaky, as Surefire reports a test its own rerun saved.

The last attempt's report is the job's result; the failed attempts' results are kept as that case's
`Rerun` entries (``flakyFailure``/``flakyError`` when it passed in the end, ``rerunFailure``/
``rerunError`` when it failed again), so the report, junit.xml and the server show why it was flaky.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from runner.reports.model import FAILING, Rerun, TestCase


def _identity(case: TestCase) -> tuple[str, str, str, str]:
    return (case.job, case.suite, case.classname, case.name)


def mark_retried(cases: Iterable[TestCase], earlier: Sequence[Iterable[TestCase]]) -> int:
    """Mark the last attempt's `cases` against the `earlier` attempts' (oldest first); returns how many
    turned flaky. A case counts once per attempt that failed it."""
    failures: dict[tuple[str, str, str, str], list[TestCase]] = {}
    for attempt in earlier:
        for case in attempt:
            if case.status in FAILING:
                failures.setdefault(_identity(case), []).append(case)
    turned = 0
    for case in cases:
        failed_before = failures.get(_identity(case))
        if not failed_before:
            continue
        if case.status in ("passed", "flaky"):
            reruns = [_rerun(old, "flaky") for old in failed_before]
            case.reruns = [*reruns, *case.reruns]
            if case.status == "passed":
                case.status = "flaky"
                case.message, case.type, case.trace = reruns[0].message, reruns[0].type, reruns[0].trace
                turned += 1
        elif case.status in FAILING:
            case.reruns = [*(_rerun(old, "rerun") for old in failed_before), *case.reruns]
    return turned


def _rerun(case: TestCase, prefix: str) -> Rerun:
    kind = f"{prefix}{'Error' if case.status == 'error' else 'Failure'}"
    return Rerun(kind, case.message, case.type, case.trace, case.stdout, case.stderr)
