"""A build's test cases beside the previous build of the same branch: new failures, fixes, old failures.

A case is the same case across builds when its job, suite and name are (`case_key`, stored with
each row). Only failing cases can change (`change`), so a comparison needs the previous build's
failing keys and this build's cases with those keys, never two whole builds: the tests page
(`tests_view`) reads the failing, flaky and fixed cases in full and pages the rest; the JSON API
(`build_tests`) lists every case, as contract.md §3 says.
"""

from __future__ import annotations

import hashlib
import math
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

FAILING = frozenset({"failed", "error"})
NOTEWORTHY_STATUSES = frozenset({"failed", "error", "flaky"})
STATUS_KEYS = ("total", "passed", "failed", "error", "skipped", "flaky")
CHANGES = ("new_failure", "still_failing", "fixed")
#: The order of the page: failures, then flaky cases, then the rest; new failures before old ones.
STATUS_RANK = {"error": 0, "failed": 0, "flaky": 1, "passed": 2, "skipped": 3}
CHANGE_RANK = {"new_failure": 0, "still_failing": 1, "fixed": 2}
PAGE_SIZE = 200
HISTORY = 20  # builds in a case's history strip
SLOWEST = 10
SUITES_SHOWN = 100  # rows of the suites table (failing suites first): a big build has thousands
SHOWN_TEXT = 16 * 1024  # characters of a trace or output the page shows (the JSON has it all)

STATUS_FILTERS = ("failing", "failed", "error", "flaky", "passed", "skipped")
CHANGE_FILTERS = ("changed", *CHANGES)


def case_key(job: str, suite: str, name: str) -> str:
    """The name of a case across builds: a digest, so the index on it stays small whatever the names."""
    return hashlib.sha1(f"{job}\x1f{suite}\x1f{name}".encode(errors="replace")).hexdigest()[:32]


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


def _summary(counts: dict[str, int]) -> dict[str, int]:
    summary = dict.fromkeys(STATUS_KEYS, 0)
    for status, n in counts.items():
        summary[status if status in summary else "error"] += n
        summary["total"] += n
    return summary


def _case(row: Any, jobs: dict[int, tuple[int, str]], what: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "job": jobs.get(row.job_id, (0, ""))[1],
        "job_id": row.job_id,
        "suite": row.suite,
        "classname": row.classname,
        "name": row.name,
        "status": row.status,
        "flaky": bool(row.flaky) or row.status == "flaky",
        "change": what,
        "duration": row.duration,
        "file": row.file,
        "line": row.line,
        "message": row.message,
    }


def build_tests(queries: Any, build: dict[str, Any]) -> dict[str, Any]:
    """The JSON API's answer: every case of the build with its change against the previous build."""
    from runner.server.testqueries import TestQueries

    tests = TestQueries(queries.sessions)
    previous_id = tests.previous_build(build)
    before = tests.failing(previous_id) if previous_id is not None else {}
    jobs = tests.job_names(build["id"])
    cases: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    changes = dict.fromkeys(CHANGES, 0)
    rows = sorted(tests.all_cases(build["id"]), key=lambda r: (jobs.get(r.job_id, (0, ""))[0], r.id))
    for row in rows:
        what = change(row.status, before.get(row.key))
        cases.append(_case(row, jobs, what))
        counts[row.status] = counts.get(row.status, 0) + 1
        if what:
            changes[what] += 1
    return {
        "build_id": build["id"],
        "previous_build_id": previous_id,
        "summary": _summary(counts),
        "changes": changes,
        "cases": cases,
    }


@dataclass(frozen=True)
class Filters:
    """The page's filter, from its query string; an unknown value means no filter."""

    status: str = ""
    change: str = ""
    text: str = ""
    page: int = 1
    case: str = ""  # one case's key (`case_key`): the history strip's links show that case

    @classmethod
    def parse(
        cls,
        status: str | None,
        change: str | None,
        text: str | None,
        page: int | None,
        case: str | None = None,
    ) -> Filters:
        key = (case or "").strip().lower()
        return cls(
            status=status if status in STATUS_FILTERS else "",
            change=change if change in CHANGE_FILTERS else "",
            text=(text or "").strip()[:200],
            page=max(1, page or 1),
            case=key if len(key) == 32 and all(c in "0123456789abcdef" for c in key) else "",
        )

    @property
    def active(self) -> bool:
        return bool(self.status or self.change or self.text or self.case)

    def wants_status(self, status: str) -> bool:
        if not self.status:
            return True
        return status in FAILING if self.status == "failing" else status == self.status

    def wants_change(self, what: str | None) -> bool:
        if not self.change:
            return True
        return what is not None if self.change == "changed" else what == self.change

    def wants_text(self, case: dict[str, Any]) -> bool:
        if self.case and case.get("key") != self.case:
            return False
        if not self.text:
            return True
        needle = self.text.casefold()
        fields = (case["name"], case["suite"], case["classname"], case["message"])
        return any(needle in (value or "").casefold() for value in fields)

    def query(self, **over: Any) -> dict[str, Any]:
        """The query string of this filter with `over` changed (empty values left out)."""
        values = {
            "status": self.status,
            "change": self.change,
            "q": self.text,
            "case": self.case,
            "page": self.page,
        }
        values.update(over)
        return {k: v for k, v in values.items() if v and not (k == "page" and v == 1)}


def _shown(text: str) -> tuple[str, bool]:
    if len(text) <= SHOWN_TEXT:
        return text, False
    return text[:SHOWN_TEXT], True


@dataclass
class BuildCases:
    """What the tests page reads of a whole build, whatever the filter or page: kept for finished builds."""

    jobs: dict[int, tuple[int, str]]
    noteworthy: list[dict[str, Any]]  # failing, flaky and fixed cases, in page order
    changes: dict[str, int]
    suites: list[dict[str, Any]]
    slowest: list[dict[str, Any]]
    summary: dict[str, int]


#: A finished build's test cases never change, so a few are kept per store (weakly, by its sessions).
CACHED_BUILDS = 16
_cache_lock = threading.Lock()
_caches: weakref.WeakKeyDictionary[Any, OrderedDict[tuple[int, str, int | None], BuildCases]] = (
    weakref.WeakKeyDictionary()
)


def _build_cases(tests: Any, queries: Any, build: dict[str, Any], previous_id: int | None) -> BuildCases:
    finished = build.get("finished_at")
    key = (build["id"], str(finished), previous_id)  # a later-finishing older build changes the comparison
    if finished:
        with _cache_lock:
            cache = _caches.setdefault(queries.sessions, OrderedDict())
            found = cache.get(key)
            if found is not None:
                cache.move_to_end(key)
                return found
    build_id = build["id"]
    jobs = tests.job_names(build_id)
    before = tests.failing(previous_id) if previous_id is not None else {}
    changes = dict.fromkeys(CHANGES, 0)
    noteworthy: list[dict[str, Any]] = []
    for row in tests.noteworthy(build_id, before):
        case = _case(row, jobs, change(row.status, before.get(row.key)))
        case["key"] = row.key
        if case["change"]:
            changes[case["change"]] += 1
        noteworthy.append(case)
    noteworthy.sort(
        key=lambda c: (
            STATUS_RANK.get(c["status"], 0),
            CHANGE_RANK.get(c["change"] or "", 3),
            jobs.get(c["job_id"], (0, ""))[0],
            c["id"],
        )
    )
    slowest = [_case(row, jobs, None) for row in tests.slowest(build_id, SLOWEST)]
    found = BuildCases(
        jobs=jobs,
        noteworthy=noteworthy,
        changes=changes,
        suites=_suites(tests.suites(build_id), jobs),  # failing suites first
        slowest=[c for c in slowest if c["duration"] > 0],
        summary=_summary(tests.status_counts(build_id)),
    )
    if finished:
        with _cache_lock:
            cache = _caches.setdefault(queries.sessions, OrderedDict())
            cache[key] = found
            while len(cache) > CACHED_BUILDS:
                cache.popitem(last=False)
    return found


def tests_view(queries: Any, build: dict[str, Any], filters: Filters) -> dict[str, Any]:
    """What the tests page shows: counts, suites, the slowest cases, and one page of cases with history.

    Page 1 holds every failing and flaky case and every fixed one (those that match the filter), then
    passing and skipped cases up to `PAGE_SIZE` cases in all; the later pages hold `PAGE_SIZE` of those.
    """
    from runner.server.testqueries import TestQueries

    tests = TestQueries(queries.sessions)
    build_id = build["id"]
    previous_id = tests.previous_build(build)
    whole = _build_cases(tests, queries, build, previous_id)
    jobs, noteworthy = whole.jobs, whole.noteworthy
    shown = [
        dict(c)  # the page adds history and text to its own copy
        for c in noteworthy
        if filters.wants_status(c["status"]) and filters.wants_change(c["change"]) and filters.wants_text(c)
    ]
    # Page 1 has every noteworthy case, then passing and skipped ones up to PAGE_SIZE cases in all;
    # the later pages hold PAGE_SIZE of those each.
    first_fill = max(0, PAGE_SIZE - len(shown))
    if filters.page > 1:
        shown = []
        offset, limit = first_fill + (filters.page - 2) * PAGE_SIZE, PAGE_SIZE
    else:
        offset, limit = 0, first_fill

    statuses = tuple(s for s in ("passed", "skipped") if filters.wants_status(s))
    others_total, others = 0, []
    if statuses and not filters.change:
        exclude = {c["id"] for c in noteworthy if c["status"] not in NOTEWORTHY_STATUSES}
        others_total, rows = tests.others(
            build_id, exclude, statuses, filters.text, offset, limit, filters.case
        )
        for row in rows:
            case = _case(row, jobs, None)
            case["key"] = row.key
            others.append(case)
    shown.extend(others)

    recent = tests.recent_builds(build, HISTORY)
    history = tests.history((c["key"] for c in shown), [b.id for b in recent])
    details = tests.details(c["id"] for c in shown)
    for case in shown:
        statuses_by_build = history.get(case["key"], {})
        case["history"] = [(ref, statuses_by_build.get(ref.id)) for ref in recent]
        trace, output = details.get(case["id"], ("", ""))
        case["trace"], case["trace_cut"] = _shown(trace)
        case["output"], case["output_cut"] = _shown(output)

    return {
        "build_id": build_id,
        "previous_build_id": previous_id,
        "summary": whole.summary,
        "changes": whole.changes,
        "filters": filters,
        "cases": shown,
        "noteworthy_total": len(noteworthy),
        "others_total": others_total,
        "page": filters.page,
        "pages": 1 + math.ceil(max(0, others_total - first_fill) / PAGE_SIZE),
        "page_size": PAGE_SIZE,
        "builds": recent,
        "slowest": whole.slowest,
        "suites": whole.suites[:SUITES_SHOWN],
        "suites_total": len(whole.suites),
    }


def _suites(
    rows: list[tuple[int, str, str, int, float]], jobs: dict[int, tuple[int, str]]
) -> list[dict[str, Any]]:
    """Per (job, suite): counts by status and seconds; failing suites first, then in job order."""
    table: dict[tuple[int, str], dict[str, Any]] = {}
    for job_id, suite, status, n, seconds in rows:
        entry = table.setdefault(
            (job_id, suite),
            {
                "job": jobs.get(job_id, (0, ""))[1],
                "suite": suite,
                "duration": 0.0,
                **dict.fromkeys(STATUS_KEYS, 0),
            },
        )
        entry[status if status in STATUS_KEYS else "error"] += n
        entry["total"] += n
        entry["duration"] += seconds
    ordered = sorted(
        table.items(),
        key=lambda item: (
            -(item[1]["failed"] + item[1]["error"]),
            jobs.get(item[0][0], (0, ""))[0],
            item[0][1],
        ),
    )
    return [entry for _key, entry in ordered]
