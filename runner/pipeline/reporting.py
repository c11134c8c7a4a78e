"""The seam to `runner.reports`: JUnit files of a job's workspace into test cases and counts.

Looked up at run time so the engine still runs (with a warning) where the reports package is absent.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any


def collect(workspace: Path, globs: list[str], job: str) -> tuple[list[Any], dict[str, int], list[str]]:
    """(cases, counts, warnings) of the JUnit reports matching `globs` in `workspace`."""
    try:
        collect_module = importlib.import_module("runner.reports.collect")
        model = importlib.import_module("runner.reports.model")
    except ImportError as exc:
        return [], {}, [f"JUnit reports not collected: runner.reports is unavailable ({exc})"]
    cases, warnings = collect_module.collect(workspace, globs, job)
    counts: dict[str, int] = dict(model.counts(cases))
    return list(cases), counts, list(warnings)


def mark_retried(cases: list[Any], earlier: list[list[Any]]) -> dict[str, int]:
    """Mark the cases that failed in an `earlier` attempt of a retried job and passed now as flaky;
    returns the counts of `cases` afterwards."""
    retries = importlib.import_module("runner.reports.retries")
    model = importlib.import_module("runner.reports.model")
    retries.mark_retried(cases, earlier)
    return dict(model.counts(cases))
