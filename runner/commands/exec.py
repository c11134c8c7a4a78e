"""`runner exec`: run a working tree's pipeline locally with the workers' engine (contract.md §1).

The order matters for the user: bad input (arguments, secrets file, ci.yml) is reported before
anything is copied or run, with exit code 2; then the working tree is snapshotted to a throwaway
directory, the pipeline is compiled against it and run, and results land in `.runner/runs/<n>/`.
The engine runs in a background thread so that Ctrl-C (or SIGTERM) in the main thread can cancel it
cleanly: containers are stopped, partial results are written, and the exit code is 130.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.config.spec import JobSpec, PipelineSpec
    from runner.settings import Paths

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class UsageError(Exception):
    """Bad input from the user (exit 2); the message is one line."""


def _error(message: str) -> None:
    print(f"runner: error: {message}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"runner: warning: {message}", file=sys.stderr)


def parse_env(entries: list[str]) -> dict[str, str]:
    """`--env K=V` entries; `--env K` alone takes K from the caller's environment, like `docker run -e`."""
    env: dict[str, str] = {}
    for entry in entries:
        name, sep, value = entry.partition("=")
        if not _ENV_NAME.match(name):
            raise UsageError(f"--env {entry!r}: expected NAME=value with a name of letters, digits and _")
        if not sep:
            if name not in os.environ:
                raise UsageError(f"--env {name}: no value given and {name} is not set here")
            value = os.environ[name]
        env[name] = value
    return env


def find_ci_file(repo_dir: Path, given: str | None) -> Path:
    """`--file` relative to the current directory (else to DIR); by default DIR/ci.yml."""
    if given is None:
        path = repo_dir / "ci.yml"
        if not path.is_file():
            raise UsageError(f"no ci.yml in {repo_dir} (give the pipeline file with --file)")
        return path
    path = Path(given)
    if not path.is_file() and not path.is_absolute() and (repo_dir / path).is_file():
        path = repo_dir / path
    if not path.is_file():
        raise UsageError(f"--file {given}: no such file")
    return path


def next_run_dir(repo_dir: Path) -> Path:
    """`DIR/.runner/runs/<n>` with the next free n, created; `.runner/` ignores itself for git."""
    base = repo_dir / ".runner"
    runs = base / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    ignore = base / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# results of `runner exec`\n*\n")
    numbers = [int(p.name) for p in runs.iterdir() if p.name.isdigit()]
    n = max(numbers, default=0) + 1
    while True:
        try:
            (runs / str(n)).mkdir()
            return runs / str(n)
        except FileExistsError:  # another `runner exec` took it
            n += 1


def display_path(path: Path) -> str:
    """Relative to the current directory when inside it, else absolute."""
    absolute = path.resolve()
    try:
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)


def main(args: argparse.Namespace) -> int:
    try:
        return _exec(args)
    except UsageError as exc:
        _error(str(exc))
        return EXIT_INVALID
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # a bug of ours: one line for the user, the traceback on request
        if os.environ.get("RUNNER_DEBUG"):
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (RUNNER_DEBUG=1 shows the traceback)")
        return EXIT_FAILED


def _load_inputs(args: argparse.Namespace, repo_dir: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """The ci.yml path, `--env` values and secrets: everything checked before any work is done."""
    from runner import settings
    from runner.pipeline.secrets import SecretsError, load_secrets_file

    ci_file = find_ci_file(repo_dir, args.file)
    env = parse_env(args.env)
    secrets_path = Path(args.secrets_file) if args.secrets_file else settings.secrets_file()
    try:
        secrets = load_secrets_file(secrets_path) if secrets_path else {}
    except SecretsError as exc:
        raise UsageError(str(exc)) from None
    return ci_file, env, secrets


def _exec(args: argparse.Namespace) -> int:
    repo_dir = Path(args.dir)
    if not repo_dir.is_dir():
        raise UsageError(f"{args.dir}: not a directory")
    ci_file, env, secrets = _load_inputs(args, repo_dir)

    from runner.config import ConfigError, EvalContext, compile_pipeline, load
    from runner.pipeline.graph import select
    from runner.pipeline.results import PipelineError
    from runner.pipeline.workspace import WorkspaceError, snapshot
    from runner.sandbox import records
    from runner.settings import Paths
    from runner.sources.gitinfo import git_context

    try:
        document = load(ci_file)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID
    git = git_context(repo_dir)
    paths = Paths.default()
    try:
        paths.tmp.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="exec-", dir=paths.tmp))
        records.write(
            paths, scratch.name, tmp_dirs=[str(scratch)]
        )  # the next runner sweeps it if we are killed
    except OSError as exc:
        _error(f"cannot create a workspace under {paths.tmp}: {exc.strerror or exc} (set RUNNER_HOME)")
        return EXIT_FAILED
    try:
        workspace = snapshot(repo_dir, scratch / "ws")
        try:
            spec = compile_pipeline(document, EvalContext(git=git, workspace=workspace, extra_env=env))
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_INVALID
        try:
            selected = select(spec, args.job or None)
        except PipelineError as exc:
            raise UsageError(str(exc)) from None
        _warn_about_secrets(selected, secrets)
        try:
            out_dir = Path(args.out) if args.out else next_run_dir(repo_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            _clear_previous_results(out_dir)
        except OSError as exc:
            _error(f"cannot create the results directory {exc.filename}: {exc.strerror or exc}")
            return EXIT_FAILED
        return _run(args, spec, workspace, out_dir, secrets, env, git, paths)
    except WorkspaceError as exc:
        _error(str(exc))
        return EXIT_FAILED
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if scratch.exists():
            _warn(f"could not remove the workspace copy {scratch}")
        else:
            records.remove(paths, scratch.name)


def _warn_about_secrets(jobs: Sequence[JobSpec], secrets: dict[str, str]) -> None:
    from runner.pipeline.secrets import Masker

    wanted = {name for job in jobs for name in job.secrets}
    for name in sorted(wanted - secrets.keys()):
        users = ", ".join(job.name for job in jobs if name in job.secrets)
        _warn(
            f"secret {name} (used by {users}) is not set: give it with --secrets-file or RUNNER_SECRETS_FILE"
        )
    for warning in Masker({name: secrets[name] for name in sorted(wanted & secrets.keys())}).warnings:
        _warn(warning)


class _Interrupts:
    """SIGINT/SIGTERM while the engine runs: the first cancels the run, the second stops waiting."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        self.signal: int | None = None
        self.abandon = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Interrupts:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is None:
            self.signal = signum
            self.cancel.set()
            print(
                "\nrunner: canceling: stopping the jobs' containers (again to stop waiting)", file=sys.stderr
            )
        else:
            self.abandon.set()


RESULT_FILES = ("summary.json", "junit.xml", "report.html")
RESULT_DIRS = ("logs", "artifacts")


def _clear_previous_results(out_dir: Path) -> None:
    """An --out directory reused from an earlier run: its results go, so none pass for this run's.

    Only what a run writes is removed, and only where an earlier run's summary.json says it was one.
    """
    if not (out_dir / "summary.json").is_file():
        return
    for name in RESULT_FILES:
        (out_dir / name).unlink(missing_ok=True)
    for name in RESULT_DIRS:
        shutil.rmtree(out_dir / name, ignore_errors=True)


def _run(
    args: argparse.Namespace,
    spec: PipelineSpec,
    workspace: Path,
    out_dir: Path,
    secrets: dict[str, str],
    env: dict[str, str],
    git: dict[str, str],
    paths: Paths,
) -> int:
    from runner.commands.console import ConsolePrinter
    from runner.pipeline.engine import run_pipeline
    from runner.pipeline.events import FanOut
    from runner.pipeline.results import PipelineError, RunOptions
    from runner.pipeline.sinks import JsonPrinter, RunDirWriter, SummaryBuilder, required_jobs_passed
    from runner.settings import concurrency

    builder = SummaryBuilder(
        repo=git.get("repo", ""), git=git, allow_failure={job.name: job.allow_failure for job in spec.jobs}
    )
    writer = RunDirWriter(out_dir)
    console = ConsolePrinter(sys.stderr if args.json else None)
    options = RunOptions(
        workspace=workspace,
        paths=paths,
        artifacts_dir=out_dir / "artifacts",
        secrets=secrets,
        extra_env=env,
        concurrency=concurrency(),
        only=args.job or None,
    )
    cancel = threading.Event()
    failure: list[BaseException] = []

    def engine() -> None:
        try:
            run_pipeline(spec, options, FanOut(builder, writer, console), cancel)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=engine, name="pipeline", daemon=True)
    with _Interrupts(cancel) as interrupts:
        thread.start()
        while thread.is_alive() and not interrupts.abandon.is_set():
            thread.join(0.2)
    if thread.is_alive():
        _warn("stopped waiting: some containers may still be stopping; partial results follow")
    if failure and isinstance(failure[0], PipelineError):
        raise UsageError(str(failure[0]))
    if failure:
        _error(f"the run stopped: {type(failure[0]).__name__}: {failure[0]}")
    summary = builder.summary(status="canceled" if interrupts.signal else "error")
    for problem in writer.finish(summary, builder.cases()):
        _warn(problem)
    console.finish(summary)
    try:
        if args.json:
            JsonPrinter().finish(summary)
        print(
            f"report: {display_path(out_dir / 'report.html')}", file=sys.stderr if args.json else sys.stdout
        )
        sys.stdout.flush()
    except BrokenPipeError:  # `runner exec | head`: the reader left, the results are on disk
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if interrupts.signal is not None:
        return 128 + interrupts.signal
    return EXIT_OK if required_jobs_passed(summary) and not failure else EXIT_FAILED
