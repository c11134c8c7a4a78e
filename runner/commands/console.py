"""The live terminal view of a run: step output prefixed with its job's name, then a summary table.

Each job gets a stable colour (from a hash of its name), so the interleaved output of parallel jobs
stays readable. Colour is used only on a terminal and never with NO_COLOR; output is never wrapped
or interpreted as markup, so a job's own text (brackets, escape-looking strings) prints as it is.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Mapping
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from runner.pipeline.events import (
    ArtifactStored,
    Event,
    JobFinished,
    JobStarted,
    LogLine,
    PhaseFinished,
    StepFinished,
    StepStarted,
    TestsCollected,
)
from runner.units import format_bytes

PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta", "bright_blue")
STATUS_STYLE = {
    "passed": "green",
    "failed": "red",
    "error": "red",
    "canceled": "yellow",
    "skipped": "dim",
    "running": "cyan",
}
STATUS_MARK = {"passed": "✓", "failed": "✗", "error": "✗", "canceled": "⊘", "skipped": "○"}
# For a console that cannot print them (LANG=C on an old system, PYTHONIOENCODING=ascii).
ASCII_MARKS = str.maketrans({"✓": "+", "✗": "x", "⊘": "-", "○": "o", "▶": ">", "↻": "~", "•": "*"})


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader went away (`runner exec | head`): go quiet, but let the run finish.

        Rich's default exits the program, which would abandon the jobs' containers mid-run.
        """
        self.quiet = True
        try:  # so that the interpreter's last flush of this stream does not complain either
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


def job_colour(job: str) -> str:
    """The same colour for the same job name, in every run."""
    return PALETTE[zlib.crc32(job.encode("utf-8")) % len(PALETTE)]


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


class ConsolePrinter:
    """A sink printing live output; `finish(summary)` prints the summary table."""

    def __init__(self, stream: IO[str] | None = None, *, color: bool | None = None) -> None:
        # Console(file=None) means "sys.stdout at print time"; no_color follows NO_COLOR by itself.
        self.console = _Console(
            file=stream,
            highlight=False,
            emoji=False,
            markup=False,
            soft_wrap=True,
            no_color=None if color is None else not color,
            force_terminal=color,
        )
        self._lock = threading.Lock()
        self._broken = False  # stdout went away (`runner exec | head`): the run goes on, silently
        self._prefixes: dict[str, str] = {}  # job -> its prefix, rendered once with the console's colours
        self._stream: IO[str] | None = None
        self._tty = False

    def _print(self, renderable: Any = "") -> None:
        """Print, never raising: a console problem must not fail the job whose event this is."""
        if self._broken:
            return
        encoding = (self.console.encoding or "utf-8").lower()
        if isinstance(renderable, Text) and not encoding.startswith("utf"):
            renderable = renderable.copy()
            plain = renderable.plain.translate(ASCII_MARKS).encode(encoding, "replace").decode(encoding)
            renderable.plain = plain  # same length: the styles' spans still fit
        try:
            self.console.print(renderable)
        except (OSError, ValueError, UnicodeError):
            self._broken = True

    def _output(self, job: str, text: str, extra: str = "") -> None:
        """A line of a step's output: one plain write of a pre-rendered prefix, not a rich render per line
        (rich managed about 3,000 lines a second, and the step waited on its full pipe meanwhile)."""
        if self._broken or self.console.quiet:
            return
        key = job + extra
        prefix = self._prefixes.get(key)
        if prefix is None:
            with self.console.capture() as captured:
                self.console.print(self._prefix(job, extra), end="")
            prefix = self._prefixes[key] = captured.get()
        line = f"{prefix} {text}\n"
        encoding = (self.console.encoding or "utf-8").lower()
        if not encoding.startswith("utf"):
            line = line.encode(encoding, "replace").decode(encoding)
        if self._stream is None:  # rich resolves these per access; a chatty step asks thousands of times
            self._stream, self._tty = self.console.file, self.console.is_terminal
        with self._lock:
            try:
                self._stream.write(line)
                if self._tty:
                    self._stream.flush()
            except BrokenPipeError:
                self.console.on_broken_pipe()
            except (OSError, ValueError, UnicodeError):
                self._broken = True

    def _prefix(self, job: str, extra: str = "") -> Text:
        return Text(f"[{job}{extra}]", style=job_colour(job))

    def _line(self, job: str, *parts: str | tuple[str, str] | Text, extra: str = "") -> None:
        text = Text.assemble(self._prefix(job, extra), " ", *parts)
        with self._lock:
            self._print(text)

    def emit(self, event: Event) -> None:
        if isinstance(event, LogLine):
            if event.stream.startswith("service:"):
                self._output(event.job, event.text, extra="/" + event.stream.removeprefix("service:"))
            elif event.stream == "runner":
                self._line(event.job, (event.text, "italic dim"))
            else:
                self._output(event.job, event.text)
        elif isinstance(event, StepStarted):
            self._line(event.job, ("▶ " + event.step, "bold"))
        elif isinstance(event, StepFinished):
            self._line(event.job, *self._step_finished(event))
        elif isinstance(event, JobStarted) and event.attempt > 1:
            self._line(event.job, (f"↻ retrying (attempt {event.attempt})", "yellow"))
        elif isinstance(event, PhaseFinished):
            detail = f": {event.detail}" if event.detail else ""
            self._line(event.job, (f"{event.phase}{detail} ({format_duration(event.duration)})", "dim"))
        elif isinstance(event, TestsCollected):
            self._line(event.job, self._tests_text(event.counts))
        elif isinstance(event, ArtifactStored):
            self._line(event.job, (f"artifact {event.path} ({format_bytes(event.size)})", "dim"))
        elif isinstance(event, JobFinished):
            style = STATUS_STYLE.get(event.status, "")
            mark = STATUS_MARK.get(event.status, "•")
            why = f": {event.reason}" if event.reason else ""
            took = f" in {format_duration(event.duration)}" if event.status != "skipped" else ""
            self._line(event.job, (f"{mark} job {event.status}{took}{why}", f"bold {style}"))

    @staticmethod
    def _step_finished(event: StepFinished) -> tuple[tuple[str, str], ...]:
        style = STATUS_STYLE.get(event.status, "")
        mark = STATUS_MARK.get(event.status, "•")
        if event.status == "skipped":
            return ((f"{mark} {event.step} (skipped)", style),)
        details = []
        if event.reason == "timeout":
            details.append("timed out")
        elif event.reason == "oom":
            details.append("out of memory")
        elif event.reason not in ("exited", ""):
            details.append(event.reason)
        if event.status != "passed" and event.exit_code is not None:
            details.append(f"exit {event.exit_code}")
        details.append(format_duration(event.duration))
        return ((f"{mark} {event.step}", style), (f" ({', '.join(details)})", "dim"))

    @staticmethod
    def _tests_text(counts: Mapping[str, int]) -> Text:
        parts = [f"{counts.get('passed', 0)} passed"]
        for key in ("failed", "error", "skipped", "flaky"):
            if counts.get(key):
                parts.append(f"{counts[key]} {key}")
        style = "red" if counts.get("failed") or counts.get("error") else "green"
        return Text("tests: " + ", ".join(parts), style=style)

    def finish(self, summary: Mapping[str, Any]) -> None:
        table = Table(title=None, show_edge=False, pad_edge=False, header_style="bold")
        table.add_column("job")
        table.add_column("status")
        table.add_column("duration", justify="right")
        table.add_column("tests", justify="right")
        for job in summary.get("jobs", []):
            status = job["status"] + (
                " (allowed)" if job.get("allow_failure") and job["status"] == "failed" else ""
            )
            tests = job.get("tests") or {}
            failed = tests.get("failed", 0) + tests.get("error", 0)
            table.add_row(
                Text(job["name"], style=job_colour(job["name"])),
                Text(status, style=STATUS_STYLE.get(job["status"], "")),
                format_duration(job.get("duration")) if job.get("started_at") is not None else "-",
                f"{tests.get('passed', 0)} passed, {failed} failed" if tests.get("total") else "-",
            )
        status = summary.get("status", "error")
        line = Text.assemble(
            (f"{STATUS_MARK.get(status, '•')} pipeline {status}", f"bold {STATUS_STYLE.get(status, '')}"),
            f" in {format_duration(summary.get('duration'))}",
        )
        with self._lock:
            self._print()
            self._print(table)
            self._print(line)
