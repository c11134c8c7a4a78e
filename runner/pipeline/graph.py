"""The job graph: which jobs to run, in which order, and which to skip because of their needs.

Pure logic, no threads and no containers: the engine asks `Schedule` what may start now and
tells it how each job ended; `Schedule` propagates skips (a failed job's dependants, a false
`if:`) and decides the pipeline's status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from runner.config.spec import JobSpec, PipelineSpec
from runner.pipeline.events import JobStatus
from runner.pipeline.results import PipelineError

SETTLED: frozenset[str] = frozenset({"passed", "failed", "skipped", "canceled", "error"})


def select(spec: PipelineSpec, only: Sequence[str] | None) -> list[JobSpec]:
    """The jobs to run, in pipeline order: all of them, or `only` and everything they need.

    A name in `only` matches a job's full name (`test (py: 3.12)`) or its base name (`test`, every
    matrix variant). Raises `PipelineError` for an unknown name or need, or a cycle.
    """
    jobs = list(spec.jobs)
    by_name = {job.name: job for job in jobs}
    if len(by_name) != len(jobs):
        seen: set[str] = set()
        for job in jobs:
            if job.name in seen:
                raise PipelineError(f"two jobs are named {job.name!r}")
            seen.add(job.name)
    for job in jobs:
        for need in job.needs:
            if need not in by_name:
                raise PipelineError(f"job {job.name!r} needs {need!r}, which is not a job of this pipeline")
    _check_acyclic(jobs, by_name)
    if only is None:
        return jobs
    wanted: set[str] = set()
    for name in only:
        matches = [job.name for job in jobs if name in (job.name, job.base_name)]
        if not matches:
            known = ", ".join(sorted({job.base_name for job in jobs})) or "none"
            raise PipelineError(f"unknown job {name!r} (jobs: {known})")
        wanted.update(matches)
    stack = list(wanted)
    while stack:
        for need in by_name[stack.pop()].needs:
            if need not in wanted:
                wanted.add(need)
                stack.append(need)
    return [job for job in jobs if job.name in wanted]


def _check_acyclic(jobs: Sequence[JobSpec], by_name: dict[str, JobSpec]) -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise PipelineError("jobs need each other in a cycle: " + " -> ".join(cycle))
        state[name] = 1
        for need in by_name[name].needs:
            visit(need, [*path, name])
        state[name] = 2

    for job in jobs:
        visit(job.name, [])


class Schedule:
    """The state of every job of a run, and the rules that move jobs from queued to settled."""

    def __init__(self, jobs: Iterable[JobSpec]) -> None:
        self.jobs = {job.name: job for job in jobs}
        self.status: dict[str, JobStatus] = dict.fromkeys(self.jobs, "queued")
        self.reason: dict[str, str] = dict.fromkeys(self.jobs, "")
        self.blocked: set[str] = set()  # skipped because a need failed (directly or upstream), not `if:`

    def ok(self, name: str) -> bool:
        """Whether dependants of `name` may run: it passed, or failed with `allow_failure`."""
        status = self.status[name]
        return status == "passed" or (status == "failed" and self.jobs[name].allow_failure)

    def skips(self) -> list[tuple[str, str]]:
        """Queued jobs that can never run (a need did not pass) or must not (`if:` is false).

        Marks them skipped and returns them with their reasons; cascades through the graph.
        """
        skipped: list[tuple[str, str]] = []
        changed = True
        while changed:
            changed = False
            for name, job in self.jobs.items():
                if self.status[name] != "queued":
                    continue
                reason, blocked = self._skip_reason(job)
                if reason:
                    self.status[name] = "skipped"
                    self.reason[name] = reason
                    if blocked:
                        self.blocked.add(name)
                    skipped.append((name, reason))
                    changed = True
        return skipped

    def _skip_reason(self, job: JobSpec) -> tuple[str, bool]:
        """Why `job` must be skipped ('' if it need not be), and whether a failure caused it.

        A job skipped only because of a false `if:` upstream is not a failure of the pipeline.
        """
        for need in job.needs:
            status = self.status[need]
            if status in SETTLED and not self.ok(need):
                verb = {"failed": "failed", "error": "errored", "canceled": "was canceled"}
                blocked = status != "skipped" or need in self.blocked
                return f"needs {need!r}, which {verb.get(status, 'was skipped')}", blocked
        if not job.condition and all(self.ok(need) for need in job.needs):
            return "its if: condition is false", False
        return "", False

    def runnable(self) -> list[JobSpec]:
        """Queued jobs whose needs all passed, in pipeline order (call `skips()` first)."""
        return [
            job
            for name, job in self.jobs.items()
            if self.status[name] == "queued" and job.condition and all(self.ok(n) for n in job.needs)
        ]

    def start(self, name: str) -> None:
        self.status[name] = "running"

    def finish(self, name: str, status: JobStatus, reason: str = "") -> None:
        self.status[name] = status
        self.reason[name] = reason

    def queued(self) -> list[str]:
        return [name for name, status in self.status.items() if status == "queued"]

    def settled(self) -> bool:
        return all(status in SETTLED for status in self.status.values())

    def pipeline_status(self, canceled: bool) -> JobStatus:
        """canceled if the run was canceled; else error/failed if a required job did; else passed."""
        if canceled:
            return "canceled"
        required = [name for name, job in self.jobs.items() if not job.allow_failure]
        if any(self.status[name] == "error" for name in required):
            return "error"
        if any(self.status[name] in ("failed", "canceled") or name in self.blocked for name in required):
            return "failed"
        return "passed"
