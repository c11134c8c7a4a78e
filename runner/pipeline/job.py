"""One attempt of one job: its filesystem, network, caches, services, steps, artifacts and reports.

Phases, in order: copy the workspace, `image` (the job's root filesystem), network, `cache_restore`,
`services`, the steps (each a fresh container over the shared root filesystem), `cache_save`
(after success, for keys that missed) and `upload` (artifacts and reports, also after a failure).
Everything the attempt made is discarded at the end, so a retry starts from a fresh filesystem.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.config.spec import CacheSpec, JobSpec, StepSpec
from runner.images.errors import ImageError
from runner.pipeline import artifacts, caches, envfile, reporting
from runner.pipeline.caches import CacheStore
from runner.pipeline.control import JobControl
from runner.pipeline.events import (
    ArtifactStored,
    JobStatus,
    LogLine,
    PhaseFinished,
    Sink,
    StepFinished,
    StepStarted,
    StepStatus,
    TestsCollected,
)
from runner.pipeline.image import ImageUnavailable, describe, resolve_rootfs
from runner.pipeline.results import Attempt, RunOptions, StepResult
from runner.pipeline.secrets import Masker
from runner.pipeline.services import ServiceFailed, Services
from runner.sandbox import (
    ContainerSpec,
    Limits,
    Mount,
    NetworkNamespace,
    Result,
    Rootfs,
    SandboxError,
    records,
    spawn,
)
from runner.sandbox.types import OutputCallback
from runner.settings import Paths

# A step's script runs as GitHub Actions and GitLab run it: bash with -e and pipefail where the image has
# bash, else POSIX sh -e. The script travels as $0 of a tiny sh launcher, so no quoting is involved.
STEP_LAUNCHER = (
    'if [ -x /bin/bash ]; then exec /bin/bash --noprofile --norc -e -o pipefail -c "$0"; fi; '
    'exec /bin/sh -e -c "$0"'
)


BASH = ["/bin/bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c"]
SH = ["/bin/sh", "-e", "-c"]


def step_argv(script: str, has_bash: bool | None = None) -> list[str]:
    """The step's command: bash or sh directly when we know which the image has, else the launcher."""
    if has_bash is None:
        return ["/bin/sh", "-c", STEP_LAUNCHER, script]
    return [*(BASH if has_bash else SH), script]


def image_has_bash(rootfs: Rootfs, paths: Paths) -> bool | None:
    """Whether /bin/bash is an executable file in the image, looked up through its layers without
    mounting (one exec per step fewer than the launcher); None when the image cannot tell."""
    try:
        from runner.images.imageview import ImageView

        _, kind = ImageView(rootfs.layers, rootfs.base, paths).resolve("/bin/bash")
        return kind == "file"
    except Exception:
        return None


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ENV_DIR = "/run/runner"  # where the step's $RUNNER_ENV directory is mounted
ENV_FILE = f"{ENV_DIR}/env"
CACHE_OP_TIMEOUT = 1800.0  # seconds a cache copy may take
DEFAULT_PIDS = 4096  # tasks per step (and service) unless `resources.pids` says: a fork bomb stops there


def job_limits(job: JobSpec) -> Limits:
    """The cgroup limits of every container of `job`: its `resources`, and the default pids limit
    wherever the host's cgroups have a pids controller to give (a v2 parent may not delegate one)."""
    from runner.sandbox.cgroups import can_limit

    res = job.resources
    pids = res.pids
    if pids is None and can_limit("pids"):
        pids = DEFAULT_PIDS
    return Limits(
        memory=res.memory,
        cpus=res.cpus,
        pids=pids,
        io_read_bps=res.io_read_bps,
        io_write_bps=res.io_write_bps,
        io_read_iops=res.io_read_iops,
        io_write_iops=res.io_write_iops,
    )


class JobAttempt:
    """Runs one attempt of a job and cleans up after it; `run()` never raises."""

    def __init__(
        self,
        job: JobSpec,
        options: RunOptions,
        sink: Sink,
        control: JobControl,
        attempt: int,
        earlier_cases: list[list[Any]] | None = None,
    ) -> None:
        self.job = job
        self.earlier_cases = earlier_cases or []  # earlier attempts' test cases (see reports.retries)
        self.options = options
        self.paths = options.paths
        self.sink = sink
        self.control = control
        self.attempt = attempt
        self.outcome = Attempt()
        self.masker: Masker = Masker([])
        self.env: dict[str, str] = {}
        self.exported: dict[str, str] = {}
        self.scratch: Path | None = None
        self.workspace: Path | None = None
        self._container_started = False
        self.has_bash: bool | None = None
        self.rootfs: Rootfs | None = None
        self.network: NetworkNamespace | None = None
        self.services: Services | None = None
        self.missed: list[CacheSpec] = []

    # -- output -----------------------------------------------------------------------------------

    def log(self, text: str, step: str | None = None) -> None:
        self.sink.emit(LogLine(self.job.name, step, "runner", self.masker.mask(text)))

    def phase(self, name: str, started: float, detail: str = "") -> None:
        self.sink.emit(PhaseFinished(self.job.name, name, time.monotonic() - started, detail))

    # -- the attempt ------------------------------------------------------------------------------

    def run(self) -> Attempt:
        try:
            self._run()
        except SandboxError as exc:  # the runner could not set the job up: one line, no traceback
            self.outcome.fail("error", str(exc))
        except Exception as exc:  # the engine's own fault: the job errors, the pipeline goes on
            self.outcome.fail("error", f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self._cleanup()
        if self.control.stopped == "canceled":
            self.outcome.status, self.outcome.reason = "canceled", "canceled"
        return self.outcome

    def _run(self) -> None:
        job = self.job
        missing = [name for name in job.secrets if name not in self.options.secrets]
        if missing:
            names = ", ".join(missing)
            self.outcome.fail("failed", f"secret {names} is not set (add it to the secrets file)")
            return
        secrets = {name: self.options.secrets[name] for name in job.secrets}
        self.masker = Masker(secrets)
        for warning in self.masker.warnings:
            self.log(f"warning: {warning}")
        if job.security.seccomp == "unconfined":
            self.log("security: no syscall filter for this job (security.seccomp: unconfined in ci.yml)")
        self.env = {
            "PATH": DEFAULT_PATH,
            "HOME": "/root",
            **job.env,
            "CI": "true",
            "RUNNER": "1",
            "RUNNER_JOB": job.name,
            "RUNNER_ATTEMPT": str(self.attempt),
            "RUNNER_WORKSPACE": "/workspace",
            **self.options.extra_env,
            **secrets,
        }
        workspace_started = time.monotonic()
        self._prepare_dirs()
        self.phase("workspace", workspace_started)  # copying the checkout: large trees take seconds
        started = time.monotonic()
        try:
            self.rootfs = resolve_rootfs(
                job.image, self.paths, workspace=self.workspace, log=self.log, seccomp=job.security.seccomp
            )
            self.has_bash = image_has_bash(self.rootfs, self.paths)
        except ImageError as exc:  # the user's: a RUN that failed, a bad reference, a missing image
            self.outcome.fail("failed", f"image {describe(job.image)}: {exc}")
            return
        except Exception as exc:  # the runner's own fault
            self.outcome.fail("error", f"image {describe(job.image)}: {exc}")
            return
        self.env = {**self.rootfs.env, **self.env}  # the image's own environment comes first
        if job.resources.disk is not None:  # SandboxError (no loop device, no mkfs): the job errors
            self.rootfs.limit_disk(job.resources.disk)
        self.phase("image", started, describe(job.image))
        self._decide_userns()
        try:
            self.network = NetworkNamespace.create(job.network, bandwidth=job.resources.bandwidth)
        except SandboxError as exc:
            self.outcome.fail("error", f"network {job.network}: {exc}")
            return
        if job.cache:
            self._restore_caches()
        if job.services and not self._start_services():
            self._upload()
            return
        self._run_steps()
        if self.services is not None:
            self.services.stop()
            self.services = None
        if self.missed and self.outcome.status == "passed" and not self.control.stopped:
            self._save_caches()
        if self.control.stopped != "canceled":
            self._upload()

    def _decide_userns(self) -> None:
        """Whether the job's containers run in a user namespace (see runner.sandbox.userns): decided
        once for its filesystem and workspace, with one line in the log when they do not."""
        from runner.sandbox import userns

        assert self.rootfs is not None and self.scratch is not None and self.workspace is not None
        if not self.job.security.userns:
            self.log(f"user namespace off (security: {{userns: false}} in ci.yml): {userns.FALLBACK}")
            return
        userns.decide(self.rootfs, [str(self.workspace), str(self.scratch / "env")])
        if self.rootfs.userns_note:
            self.log(self.rootfs.userns_note)

    def _prepare_dirs(self) -> None:
        self.paths.tmp.mkdir(parents=True, exist_ok=True)
        self.scratch = self.paths.tmp / f"job-{uuid.uuid4().hex[:12]}"
        records.write(self.paths, self.scratch.name, tmp_dirs=[str(self.scratch)])  # swept if we are killed
        self.scratch.mkdir(mode=0o700)
        (self.scratch / "env").mkdir()
        self.workspace = self.scratch / "ws"
        source = self.options.workspace
        if not source.is_dir():
            raise SandboxError(f"the workspace {source} is not a directory")
        # cp -a keeps modes, symlinks and hard links exactly; reflinks make it cheap where supported
        done = subprocess.run(
            ["cp", "-a", "--reflink=auto", "--", f"{source}/.", str(self.workspace)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            message = (done.stderr.strip().splitlines() or ["cp failed"])[-1]
            raise SandboxError(f"cannot copy the workspace {source}: {message}")

    def _cleanup(self) -> None:
        if self.services is not None:
            self.services.stop()
        if self.network is not None:
            self.network.close()
        if self.rootfs is not None:
            self.rootfs.destroy()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            records.remove(self.paths, self.scratch.name)

    # -- containers over the job's filesystem ------------------------------------------------------

    def _container(
        self, argv: list[str], env: dict[str, str], timeout: float | None, mounts: list[Mount]
    ) -> ContainerSpec:
        """A container of this job: its workspace, limits and service names, plus `mounts`."""
        return ContainerSpec(
            argv=argv,
            env=env,
            workspace=self.workspace,
            mounts=mounts,
            hosts=self.services.hosts if self.services else {},
            seccomp=self.job.security.seccomp,
            limits=job_limits(self.job),
            timeout=timeout,
            userns="auto" if self.job.security.userns else None,
        )

    def _execute(self, spec: ContainerSpec, on_output: OutputCallback) -> Result:
        """Run `spec` over the job's filesystem in its network, killable through the job's control."""
        assert self.rootfs is not None and self.network is not None
        started = time.monotonic()
        container = spawn(
            spec, rootfs=self.rootfs, network=self.network, on_output=on_output, paths=self.paths
        )
        if not self._container_started:  # how long the job's first container took to start (its mounts too)
            self._container_started = True
            self.phase("container_start", started)
        self.control.track(container)
        try:
            return container.wait()
        finally:
            self.control.untrack(container)

    def _quiet(self, script: str, mount: Mount) -> tuple[Result | None, str]:
        """Run a runner-internal shell script in the job's filesystem; (result, last output line)."""
        lines: list[str] = []

        def keep(stream: str, data: bytes) -> None:
            lines.append(data.decode("utf-8", errors="replace"))

        spec = self._container(
            ["/bin/sh", "-c", script], self.env, self.control.bound(CACHE_OP_TIMEOUT), [mount]
        )
        try:
            return self._execute(spec, keep), (lines[-1] if lines else "")
        except SandboxError as exc:
            return None, str(exc)

    # -- caches -----------------------------------------------------------------------------------

    def _restore_caches(self) -> None:
        started = time.monotonic()
        self.missed, details = caches.restore(
            CacheStore(self.paths.caches), self.job.cache, self._quiet, self.log
        )
        self.phase("cache_restore", started, ", ".join(details))

    def _save_caches(self) -> None:
        started = time.monotonic()
        details = caches.save(CacheStore(self.paths.caches), self.missed, self._quiet, self.log)
        self.phase("cache_save", started, ", ".join(details))

    # -- services ---------------------------------------------------------------------------------

    def _start_services(self) -> bool:
        assert self.network is not None
        started = time.monotonic()
        self.services = Services(
            self.job.services,
            job=self.job.name,
            network=self.network,
            paths=self.paths,
            sink=self.sink,
            mask=self.masker.mask,
            control=self.control,
            env={key: self.env[key] for key in ("PATH", "HOME", "CI", "RUNNER") if key in self.env},
            seccomp=self.job.security.seccomp,
            limits=job_limits(self.job),
            userns=self.job.security.userns,
        )
        try:
            self.services.start()
        except (ServiceFailed, ImageUnavailable) as exc:
            status: JobStatus = "error" if isinstance(exc, ImageUnavailable) else "failed"
            self.outcome.fail(status, self.masker.mask(str(exc)))
            self.log(self.outcome.reason)
            return False
        finally:
            self.phase("services", started, ", ".join(s.name for s in self.job.services))
            for service in self.services.running:  # e.g. a service image on a filesystem without idmaps
                if service.rootfs.userns_note and self.job.security.userns:
                    self.log(f"service {service.spec.name!r}: {service.rootfs.userns_note}")
        return True

    # -- steps ------------------------------------------------------------------------------------

    def _run_steps(self) -> None:
        failed = False
        for index, step in enumerate(self.job.steps):
            stopped = self.control.stopped or ("timeout" if self.control.expired() else None)
            wanted = step.when == "always" or (step.when == "on_failure") == failed
            if stopped or not wanted:
                status: StepStatus = "canceled" if stopped == "canceled" else "skipped"
                result = self._finished(StepResult(step.name, index, status, reason=status))
            else:
                result = self._run_step(index, step)
            self.outcome.steps.append(result)
            if result.status in ("failed", "error"):
                failed = True
        if self.control.stopped == "timeout" or self.control.expired():
            self.outcome.fail("failed", f"job timed out after {self.job.timeout:g}s")

    def _finished(self, result: StepResult) -> StepResult:
        self.sink.emit(
            StepFinished(
                self.job.name,
                result.name,
                result.index,
                result.status,
                result.exit_code,
                result.reason,
                result.duration,
                result.cpu_time,
                result.peak_memory,
            )
        )
        return result

    def _run_step(self, index: int, step: StepSpec) -> StepResult:
        assert self.scratch is not None
        name = step.name
        env_path = self.scratch / "env" / "env"
        envfile.reset(env_path)
        env = {**self.env, **self.exported, **step.env, "RUNNER_ENV": ENV_FILE}
        timeout = self.control.bound(step.timeout)
        spec = self._container(
            step_argv(step.run, self.has_bash),
            env,
            timeout,
            [Mount(self.scratch / "env", ENV_DIR, readonly=False)],
        )
        self.sink.emit(StepStarted(self.job.name, name, index))
        started = time.monotonic()

        def on_output(stream: str, data: bytes) -> None:
            text = self.masker.mask(data.decode("utf-8", errors="replace"))
            self.sink.emit(LogLine(self.job.name, name, stream, text))

        try:
            result = self._execute(spec, on_output)
        except SandboxError as exc:
            message = f"step {name!r} could not start: {self.masker.mask(str(exc))}"
            self.log(message, step=name)
            self.outcome.fail("error", message)
            return self._finished(
                StepResult(name, index, "error", reason="error", duration=time.monotonic() - started)
            )
        exported, warnings = envfile.read(env_path)
        self.exported.update(exported)
        for warning in warnings:
            self.log(f"warning: {warning}", step=name)
        own_timeout = step.timeout is not None and timeout == step.timeout
        status, reason = self._judge(step, result, own_timeout)
        return self._finished(
            StepResult(
                name,
                index,
                status,
                result.exit_code,
                reason,
                result.wall_time,
                result.cpu_time,
                result.peak_memory,
            )
        )

    def _judge(self, step: StepSpec, result: Result, own_timeout: bool) -> tuple[StepStatus, str]:
        """The step's status and reason, recording the job's failure reason on the way.

        `own_timeout`: the step ran under its own `timeout` rather than what was left of the job's.
        """
        name = step.name
        if result.ok:
            return "passed", "exited"
        if self.control.stopped == "canceled":
            return "canceled", "canceled"
        if result.pids_limited:  # said first: a fork bomb's step then ends some other way (exit, timeout)
            tasks = f"step {name!r} reached its limit of {job_limits(self.job).pids} tasks (resources.pids)"
            self.log(tasks, step=name)
            ending = {"exited": f"exited with code {result.exit_code}", "timeout": "timed out"}
            self.outcome.fail("failed", f"{tasks} and {ending.get(result.reason, 'was killed')}")
        if result.reason == "exited":
            self.outcome.fail("failed", f"step {name!r} exited with code {result.exit_code}")
            return "failed", "exited"
        if result.reason == "oom":
            self.outcome.fail("failed", f"step {name!r} ran out of memory")
            return "failed", "oom"
        if result.reason == "timeout" and own_timeout:
            self.outcome.fail("failed", f"step {name!r} timed out after {step.timeout:g}s")
            return "failed", "timeout"
        if result.reason == "timeout" or self.control.stopped == "timeout":
            self.outcome.fail("failed", f"job timed out after {self.job.timeout:g}s")
            return "failed", "timeout"
        self.outcome.fail("failed", f"step {name!r} was killed")
        return "failed", result.reason

    # -- upload -----------------------------------------------------------------------------------

    def _upload(self) -> None:
        if self.workspace is None or not (self.job.artifacts or self.job.reports_junit):
            return
        started = time.monotonic()
        details = []
        if self.job.artifacts:
            dest = self.options.artifacts_dir / artifacts.job_dirname(self.job.name)
            shutil.rmtree(dest, ignore_errors=True)  # a retry replaces what an earlier attempt stored
            collected = artifacts.collect(self.workspace, self.job.artifacts, dest)
            for warning in collected.warnings:
                self.log(f"warning: {warning}")
            for rel, size in collected.stored:
                self.outcome.artifacts.append(rel)
                self.sink.emit(ArtifactStored(self.job.name, rel, size))
            details.append(f"{len(collected.stored)} artifacts")
        if self.job.reports_junit:
            cases, counts, warnings = reporting.collect(
                self.workspace, list(self.job.reports_junit), self.job.name
            )
            for warning in warnings:
                self.log(f"warning: {warning}")
            for case in cases:  # test output is output: the report, junit.xml and the server show it
                _mask_case(case, self.masker.mask)
            if self.earlier_cases:  # a retry: what failed before and passes now is flaky
                counts = reporting.mark_retried(cases, self.earlier_cases)
            self.outcome.cases, self.outcome.tests = cases, counts
            self.sink.emit(TestsCollected(self.job.name, counts, tuple(cases)))
            details.append(f"{counts.get('total', 0)} tests")
        self.phase("upload", started, ", ".join(details))


def _mask_case(case: Any, mask: Callable[[str], str]) -> None:
    """Mask a job's secrets in every text field of a test case and its reruns."""
    for holder in (case, *getattr(case, "reruns", ())):
        for name in ("suite", "classname", "name", "message", "trace", "stdout", "stderr"):
            value = getattr(holder, name, None)
            if isinstance(value, str) and value:
                setattr(holder, name, mask(value))
    properties = getattr(case, "properties", None)
    if isinstance(properties, dict):
        for key, value in properties.items():
            properties[key] = mask(value) if isinstance(value, str) else value
