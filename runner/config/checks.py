"""Checks beyond the shape of each value: `needs` names and cycles, matrices, expression syntax.

They run on the plain YAML data, tolerating parts that failed validation, so one run of
`runner validate` reports as many problems as possible.
"""

from __future__ import annotations

from typing import Any

from runner.config import expressions, graph, matrix
from runner.config.diagnose import describe, suggestion
from runner.config.errors import Diagnostic
from runner.config.spec import Position
from runner.config.yamlsource import Located, YamlPath, find_position, offset_position


class Checker:
    def __init__(self, file: str, data: Any, positions: dict[YamlPath, Located], lines: list[str]) -> None:
        self.file = file
        self.data = data
        self.positions = positions
        self.lines = lines
        self.diagnostics: list[Diagnostic] = []

    def report(self, position: Position, message: str) -> None:
        self.diagnostics.append(Diagnostic(position.file, position.line, position.column, message))

    def where(self, path: YamlPath, *, key: bool = False) -> Position:
        return find_position(self.positions, path, self.file, key=key)

    def run(self) -> list[Diagnostic]:
        jobs = self.data.get("jobs") if isinstance(self.data, dict) else None
        if isinstance(jobs, dict):
            self.check_needs(jobs)
            for name, job in jobs.items():
                if isinstance(job, dict):
                    self.check_matrix(name, job.get("matrix"))
                    condition = job.get("if")
                    if isinstance(condition, str) and expressions.START not in condition:
                        self.check_bare_condition(("jobs", name, "if"), condition)
        self.check_expressions(self.data, ())
        return self.diagnostics

    def check_needs(self, jobs: dict[str, Any]) -> None:
        names = list(jobs)
        edges: dict[str, list[str]] = {name: [] for name in names}
        entry_path: dict[tuple[str, str], YamlPath] = {}
        for name, job in jobs.items():
            if not isinstance(job, dict):
                continue
            for path, target in needs_entries(name, job):
                if target == name:
                    self.report(self.where(path), f"job '{name}' needs itself")
                elif target not in jobs:
                    hint = suggestion(target, names)
                    self.report(self.where(path), f"job '{name}' needs unknown job '{target}'{hint}")
                else:
                    edges[name].append(target)
                    entry_path.setdefault((name, target), path)
            base = image_job(job, jobs)
            if base is not None and base != name:
                edges[name].append(base)
                entry_path.setdefault((name, base), ("jobs", name, "image", "from"))
        cycle = graph.find_cycle(edges)
        if cycle:
            path = entry_path.get((cycle[0], cycle[1]), ("jobs", cycle[0]))
            self.report(self.where(path), "needs cycle: " + " -> ".join(cycle))

    def check_matrix(self, job: str, raw: Any) -> None:
        if not isinstance(raw, dict):
            return
        axes = {k: v for k, v in raw.items() if k not in ("include", "exclude")}
        include, exclude = raw.get("include", []), raw.get("exclude", [])
        shapes_ok = (
            all(isinstance(v, list) for v in axes.values())
            and isinstance(include, list)
            and isinstance(exclude, list)
            and all(isinstance(e, dict) for e in [*include, *exclude])
        )
        if not shapes_ok:
            return  # the model reports the shape
        try:
            matrix.expand(axes, include, exclude)
        except matrix.MatrixError as exc:
            path: YamlPath = ("jobs", job, "matrix", *exc.where)
            self.report(self.where(path, key=bool(exc.where)), f"{describe(('jobs', job, 'matrix'))}: {exc}")

    def check_bare_condition(self, path: YamlPath, text: str) -> None:
        for problem in expressions.check_syntax("${{ " + text + " }}"):
            self.report(self.where(path), problem.message)

    def check_expressions(self, value: Any, path: YamlPath) -> None:
        if isinstance(value, str):
            if expressions.START in value or expressions.END in value:
                for problem in expressions.check_syntax(value):
                    start = self.where(path)
                    self.report(offset_position(self.lines, start, value, problem.offset), problem.message)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.check_expressions(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.check_expressions(item, (*path, index))


def needs_entries(name: str, job: dict[str, Any]) -> list[tuple[YamlPath, str]]:
    """(path, job name) for each `needs` entry of a raw job, plus `image.from` naming a job."""
    needs = job.get("needs")
    entries: list[tuple[YamlPath, str]] = []
    if isinstance(needs, str):
        entries.append((("jobs", name, "needs"), needs))
    elif isinstance(needs, list):
        entries.extend((("jobs", name, "needs", i), n) for i, n in enumerate(needs) if isinstance(n, str))
    return entries


def image_job(job: dict[str, Any], job_names: Any) -> str | None:
    """The job whose image `image.from` names, if any: such a job is needed implicitly."""
    image = job.get("image")
    base = image.get("from") if isinstance(image, dict) else None
    return base if isinstance(base, str) and base in job_names else None
