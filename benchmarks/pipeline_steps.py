"""Per-step overhead of the pipeline engine: one job of N `true` steps, beside bubblewrap running N `true`s.

    python benchmarks/pipeline_steps.py [--steps 200]

Ours goes through `run_pipeline` exactly as `runner exec` does (a fresh container per step over the
job's shared overlay filesystem, in the job's network namespace, with $RUNNER_ENV read after each
step). The peer is `bwrap --unshare-all true` with a minimal read-only root, run N times in the same
process. The goal is at most 5 ms per step. Needs root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runner.config.spec import JobSpec, PipelineSpec, StepSpec
from runner.pipeline import RunOptions, run_pipeline
from runner.pipeline.events import Collector, StepFinished, StepStarted
from runner.sandbox import ContainerSpec, Mount, NetworkNamespace, Rootfs, run
from runner.settings import Paths

GOAL_MS = 5.0


def bwrap_argv() -> list[str]:
    argv = ["bwrap", "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{name}"
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    return [*argv, "--proc", "/proc", "--dev", "/dev", "--unshare-all", "true"]


def ours(steps: int, home: Path) -> tuple[float, float]:
    """(ms per step over the whole run_pipeline call, ms per step from first step start to last end)."""
    workspace = home / "src"
    workspace.mkdir()
    job = JobSpec(
        name="bench", base_name="bench", steps=tuple(StepSpec(name=f"s{i}", run="true") for i in range(steps))
    )
    options = RunOptions(workspace=workspace, paths=Paths(home / "home"), artifacts_dir=home / "artifacts")
    # warm-up: the host image skeleton and /etc mask are made once per RUNNER_HOME
    run_pipeline(
        PipelineSpec((JobSpec(name="w", base_name="w", steps=(StepSpec("w", "true"),)),)),
        options,
        Collector(),
    )
    sink = Collector()
    began = time.perf_counter()
    result = run_pipeline(PipelineSpec((job,)), options, sink)
    total = time.perf_counter() - began
    if result.status != "passed":
        raise SystemExit(f"our run failed: {result.jobs['bench'].reason}")
    first = min(e.time for e in sink.of(StepStarted))
    last = max(e.time for e in sink.of(StepFinished))
    return total * 1000 / steps, (last - first) * 1000 / steps


def sandbox_alone(steps: int, home: Path) -> float:
    """ms per `true` through runner.sandbox directly: what the engine adds is ours minus this."""
    paths = Paths(home / "home")
    workspace = home / "bare"
    workspace.mkdir()
    env_dir = home / "env"
    env_dir.mkdir()
    # the same container a step gets: its shell, the $RUNNER_ENV mount, a CI environment
    spec = ContainerSpec(
        ["/bin/sh", "-e", "-c", "true"],
        env={"CI": "true", "RUNNER_ENV": "/run/runner/env"},
        workspace=workspace,
        mounts=[Mount(env_dir, "/run/runner", readonly=False)],
    )
    with Rootfs.create(paths) as rootfs, NetworkNamespace.create("none") as network:
        run(spec, rootfs=rootfs, network=network, paths=paths)
        began = time.perf_counter()
        for _ in range(steps):
            run(spec, rootfs=rootfs, network=network, on_output=lambda stream, line: None, paths=paths)
        return (time.perf_counter() - began) * 1000 / steps


def bwrap(steps: int) -> float:
    argv = bwrap_argv()
    subprocess.run(argv, check=True)  # warm-up, and fail loudly if bwrap cannot run here
    began = time.perf_counter()
    for _ in range(steps):
        subprocess.run(argv, check=True)
    return (time.perf_counter() - began) * 1000 / steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("pipeline_steps: needs root (namespaces, cgroups, overlayfs)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-steps-") as tmp:
        whole, steps_only = ours(args.steps, Path(tmp))
        bare = sandbox_alone(args.steps, Path(tmp))
    print(f"ours : {whole:7.2f} ms/step over run_pipeline ({args.steps} steps of `true`, one job)")
    print(f"ours : {steps_only:7.2f} ms/step between the first step's start and the last step's end")
    print(f"ours : {bare:7.2f} ms/step for runner.sandbox.run alone (the engine adds {whole - bare:.2f} ms)")
    if shutil.which("bwrap") is None:
        print("bwrap: not installed (apt-get install bubblewrap): no peer figure in this run")
        return 0
    peer = bwrap(args.steps)
    print(f"bwrap: {peer:7.2f} ms/step (bwrap --unshare-all true, {args.steps} runs)")
    print(f"ratio: ours/bwrap = {whole / peer:.2f} (whole run), {steps_only / peer:.2f} (steps only)")
    verdict = "meets" if whole <= GOAL_MS else "misses"
    print(f"goal : <= {GOAL_MS:g} ms/step: {verdict} it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
