"""Backend-neutral pipeline types: what `runner.config` compiles a ci.yml into.

These are plain frozen dataclasses with every `${{ expr }}` already evaluated and every
matrix already expanded, so the pipeline engine never sees YAML, Jinja or pydantic. The
same values drive `runner exec` and the workers: a difference between local and server
runs can only come from the context passed to the compiler, never from the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

When = Literal["on_success", "on_failure", "always"]
NetworkMode = Literal["none", "bridge", "host"]
SeccompMode = Literal["default", "unconfined"]


@dataclass(frozen=True)
class Position:
    """Where a value came from, for messages: `ci.yml:12:5`."""

    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class BuildInstruction:
    """One entry of `image.build`: kind is run | copy | env | workdir.

    `run`: args = (command,); `copy`: args = (src, dest); `env`: args = (("K", "V"), ...) flattened
    as "K=V" strings; `workdir`: args = (path,).
    """

    kind: Literal["run", "copy", "env", "workdir"]
    args: tuple[str, ...]


@dataclass(frozen=True)
class ImageSpec:
    """A job's or service's image.

    `ref` is `host`, a registry reference, an image name from the local store, or another
    job's image name. With `build` or `dockerfile`, `ref` is the base (`from:`).
    """

    ref: str = "host"
    build: tuple[BuildInstruction, ...] = ()
    dockerfile: str | None = None
    context: str | None = None
    base: ImageSpec | None = None  # when `ref` names another job: that job's image, built first

    @property
    def is_host(self) -> bool:
        return self.ref == "host" and not self.build and self.dockerfile is None and self.base is None


@dataclass(frozen=True)
class Resources:
    memory: int | None = None  # bytes
    cpus: float | None = None
    pids: int | None = None  # None: the runner's default per step (runner.pipeline.job.DEFAULT_PIDS)
    disk: int | None = None  # bytes of the job's writable layer
    io_read_bps: int | None = None  # bytes per second
    io_write_bps: int | None = None
    io_read_iops: int | None = None
    io_write_iops: int | None = None
    bandwidth: int | None = None  # bits per second, each way


@dataclass(frozen=True)
class Security:
    """`security:` of a job: the seccomp policy and whether the job runs in a user namespace."""

    seccomp: SeccompMode = "default"
    userns: bool = True


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: ImageSpec
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    ready: str | None = None  # shell command run in the job's network until it exits 0
    ready_timeout: float = 30.0


@dataclass(frozen=True)
class CacheSpec:
    key: str  # already evaluated
    paths: tuple[str, ...]  # absolute: inside the container; relative: under the workspace


@dataclass(frozen=True)
class StepSpec:
    name: str
    run: str  # a shell script, run with `sh -e -c`
    when: When = "on_success"
    timeout: float | None = None  # seconds
    env: dict[str, str] = field(default_factory=dict)
    position: Position | None = None


@dataclass(frozen=True)
class JobSpec:
    name: str  # unique, e.g. "test (py: 3.12)" for a matrix job
    base_name: str  # the key under `jobs:`, e.g. "test"
    steps: tuple[StepSpec, ...]
    matrix: dict[str, str] = field(default_factory=dict)
    image: ImageSpec = field(default_factory=ImageSpec)
    env: dict[str, str] = field(default_factory=dict)  # pipeline env merged with job env
    needs: tuple[str, ...] = ()  # expanded job names
    services: tuple[ServiceSpec, ...] = ()
    resources: Resources = field(default_factory=Resources)
    security: Security = field(default_factory=Security)
    network: NetworkMode = "bridge"
    timeout: float | None = None  # seconds, for the whole job
    retry: int = 0
    allow_failure: bool = False
    condition: bool = True  # `if:`, already evaluated
    cache: tuple[CacheSpec, ...] = ()
    secrets: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()  # globs relative to the workspace
    reports_junit: tuple[str, ...] = ()  # globs relative to the workspace
    labels: tuple[str, ...] = ()
    position: Position | None = None


@dataclass(frozen=True)
class Triggers:
    """The `on:` section; `runner exec` ignores it."""

    branches: tuple[str, ...] = ("*",)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class PipelineSpec:
    jobs: tuple[JobSpec, ...]  # in a valid topological order
    triggers: Triggers = field(default_factory=Triggers)
    file: str = "ci.yml"

    def job(self, name: str) -> JobSpec:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)
