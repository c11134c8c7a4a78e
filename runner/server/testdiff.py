"""A build's test cases beside the previous build of the same branch: new failures, fixes, old failures."""

from __future__ import annotations

from typing import Any

from runner.server.queries import BuildQueries

FAILING = frozenset({"failed", "error"})


def change(now: str, before: str | None) -> str | None:
    """`new_failure`, `fixed`, `still_failing`, or None when nothing changed worth saying."""
    failing_now = now in FAILING
    failing_before = before in FAILING if before is not None else False
    if failing_now and failing_before:
        return "still_failing"
    if failing_now:
        return "new_failure"
    if failing_before and now in ("passed", "flaky"):
        return "fixed"
    return None


def build_tests(queries: BuildQueries, build: dict[str, Any]) -> dict[str, Any]:
    previous_id = queries.previous_build(build)
    before: dict[tuple[str, str, str], str] = {}
    if previous_id is not None:
        for job, case in queries.cases(previous_id):
            before[(job, case.suite, case.name)] = case.status
    cases: list[dict[str, Any]] = []
    summary = dict.fromkeys(("total", "passed", "failed", "error", "skipped", "flaky"), 0)
    changes = dict.fromkeys(("new_failure", "fixed", "still_failing"), 0)
    for job, case in queries.cases(build["id"]):
        what = change(case.status, before.get((job, case.suite, case.name)))
        cases.append(
            {
                "job": job,
                "suite": case.suite,
                "name": case.name,
                "status": case.status,
                "duration": case.duration,
                "message": case.message,
                "change": what,
            }
        )
        summary["total"] += 1
        summary[case.status] = summary.get(case.status, 0) + 1
        if what:
            changes[what] += 1
    return {
        "build_id": build["id"],
        "previous_build_id": previous_id,
        "summary": summary,
        "changes": changes,
        "cases": cases,
    }
