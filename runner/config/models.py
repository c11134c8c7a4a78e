"""The pydantic models of ci.yml (contract §2): the source of validation and of the JSON Schema.

Values that may hold `${{ expr }}` stay strings here; they are checked again after evaluation
by the compiler. Unions are discriminated by the YAML type so an error names one expectation.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    Tag,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from runner.config.units import (
    BYTE_RATE_HINT,
    DURATION_HINT,
    RATE_HINT,
    SIZE_HINT,
    parse_bandwidth,
    parse_byte_rate,
    parse_disk,
    parse_duration,
    parse_size,
)

EXPRESSION_START = "${{"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_JOB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def _expected(what: str) -> PydanticCustomError:
    return PydanticCustomError("expected", "{expected}", {"expected": what})


def _kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return None


def _by_kind(what: str) -> Discriminator:
    """Pick a union member by the YAML type, so an error names one expectation."""
    return Discriminator(_kind, custom_error_type="expected", custom_error_message=what)


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float):
        return value
    raise _expected("a string, number or boolean")


def _condition(value: Any) -> Any:
    if isinstance(value, bool | str):
        return value
    raise _expected("true, false or an expression")


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise _expected("a number")
    return value


def _name_check(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise PydanticCustomError("invalid", "{problem}", {"problem": f"invalid {what} '{value}'"})
        return value

    return check


def _unit_check(parse: Any, hint: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _expected(f"a string or a number ({hint})")
        if isinstance(value, str) and EXPRESSION_START in value:
            return value  # checked after evaluation
        try:
            parse(value)
        except ValueError as exc:
            raise PydanticCustomError("invalid", "{problem}", {"problem": str(exc)}) from None
        return value

    return check


def _workspace_glob(value: str) -> str:
    if EXPRESSION_START not in value and (value.startswith("/") or ".." in value.split("/")):
        problem = f"'{value}' must be relative to the workspace and stay inside it"
        raise PydanticCustomError("invalid", "{problem}", {"problem": problem})
    return value


def _context_path(value: str) -> str:
    if EXPRESSION_START not in value and (value.startswith("/") or ".." in value.split("/")):
        problem = f"'{value}' must be relative to the build context and stay inside it"
        raise PydanticCustomError("invalid", "{problem}", {"problem": problem})
    return value


_UNIT_SCHEMA = {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}]}

_SCALAR_SCHEMA = {"type": ["string", "number", "boolean", "null"]}
Scalar = Annotated[Any, PlainValidator(_scalar), WithJsonSchema(_SCALAR_SCHEMA)]
Condition = Annotated[Any, PlainValidator(_condition), WithJsonSchema({"type": ["boolean", "string"]})]
PositiveFloat = Annotated[float, Field(gt=0), BeforeValidator(_not_bool)]
Count = Annotated[int, BeforeValidator(_not_bool)]
EnvName = Annotated[str, AfterValidator(_name_check(_ENV_NAME, "variable name"))]
JobName = Annotated[str, AfterValidator(_name_check(_JOB_NAME, "job name"))]
EnvMap = dict[EnvName, Scalar]
Duration = Annotated[
    Any,
    PlainValidator(_unit_check(parse_duration, DURATION_HINT)),
    WithJsonSchema({**_UNIT_SCHEMA, "description": f"Seconds, or a duration: {DURATION_HINT}."}),
]
Size = Annotated[
    Any,
    PlainValidator(_unit_check(parse_size, SIZE_HINT)),
    WithJsonSchema({**_UNIT_SCHEMA, "description": f"Bytes, or a size: {SIZE_HINT}."}),
]
DiskSize = Annotated[
    Any,
    PlainValidator(_unit_check(parse_disk, SIZE_HINT)),
    WithJsonSchema({**_UNIT_SCHEMA, "description": f"Bytes, at least 8M, or a size: {SIZE_HINT}."}),
]
ByteRate = Annotated[
    Any,
    PlainValidator(_unit_check(parse_byte_rate, BYTE_RATE_HINT)),
    WithJsonSchema({**_UNIT_SCHEMA, "description": f"Bytes per second: {BYTE_RATE_HINT}."}),
]
Bandwidth = Annotated[
    Any,
    PlainValidator(_unit_check(parse_bandwidth, RATE_HINT)),
    WithJsonSchema({"type": "string", "description": f"A rate with a unit: {RATE_HINT}."}),
]
StrList = Annotated[
    Annotated[str, Tag("str")] | Annotated[list[str], Tag("list")], _by_kind("a string or a list of strings")
]
NonEmpty = Annotated[str, Field(min_length=1)]
ContextPath = Annotated[str, Field(min_length=1), AfterValidator(_context_path)]
WorkspaceGlob = Annotated[str, Field(min_length=1), AfterValidator(_workspace_glob)]
GlobList = Annotated[
    Annotated[WorkspaceGlob, Tag("str")] | Annotated[list[WorkspaceGlob], Tag("list")],
    _by_kind("a string or a list of strings"),
]


class _Strict(BaseModel):
    # defer_build: only Pipeline's validator gets built, on first use (keeps `runner validate` fast)
    model_config = ConfigDict(extra="forbid", populate_by_name=False, defer_build=True)


class BuildStep(_Strict):
    """One layer of an image built for a job: exactly one of copy, run, env, workdir."""

    copy_: ContextPath | None = Field(
        None, alias="copy", description="A context file or directory, copied to `to` (default /src/SRC)."
    )
    to: NonEmpty | None = Field(None, description="Destination of `copy` inside the image.")
    run: NonEmpty | None = Field(None, description="A shell command run while building the layer.")
    env: EnvMap | None = Field(None, description="Environment variables set in the image.")
    workdir: NonEmpty | None = Field(None, description="Working directory of later layers and of the job.")

    @model_validator(mode="after")
    def _one_instruction(self) -> BuildStep:
        values = (("copy", self.copy_), ("run", self.run), ("env", self.env), ("workdir", self.workdir))
        given = [key for key, value in values if value is not None]
        if len(given) != 1:
            found = f" (found {', '.join(given)})" if given else ""
            raise PydanticCustomError(
                "invalid", "{problem}", {"problem": f"needs exactly one of copy, run, env, workdir{found}"}
            )
        if self.to is not None and self.copy_ is None:
            raise PydanticCustomError("invalid", "{problem}", {"problem": "'to' is only allowed with 'copy'"})
        return self


class ImageBuild(_Strict):
    """An image built for the job, with layer caching: `build` layers on `from`, or a Dockerfile."""

    from_: NonEmpty | None = Field(
        None, alias="from", description="Base image: host, a registry reference, or another job's image name."
    )
    build: list[BuildStep] = Field(default_factory=list, description="One layer per entry, in order.")
    dockerfile: NonEmpty | None = Field(None, description="Build from this Dockerfile instead of `build`.")
    context: NonEmpty | None = Field(None, description="Build context directory, relative to the workspace.")

    @model_validator(mode="after")
    def _build_or_dockerfile(self) -> ImageBuild:
        if self.build and self.dockerfile is not None:
            problem = "use either 'build' or 'dockerfile', not both"
            raise PydanticCustomError("invalid", "{problem}", {"problem": problem})
        return self


ImageField = Annotated[
    Annotated[str, Tag("str")] | Annotated[ImageBuild, Tag("map")],
    _by_kind("an image reference or a mapping with from/build/dockerfile"),
]


class Service(_Strict):
    """A sidecar sharing the job's network, reachable as 127.0.0.1 and by its name."""

    image: NonEmpty | None = Field(None, description="The service's image (default: the job's image).")
    command: StrList | None = Field(
        None, description="Command and arguments; a string is split like a shell does."
    )
    env: EnvMap = Field(default_factory=dict, description="Environment of the service.")
    ready: NonEmpty | None = Field(
        None, description="Shell command retried until it exits 0, before the steps."
    )
    ready_timeout: Duration | None = Field(None, description="How long to wait for `ready` (default 30s).")


class IoLimits(_Strict):
    """Disk I/O throttles. Under cgroup v1 they hold back direct and synchronous I/O only (see the docs)."""

    read_bps: ByteRate | None = Field(None, description="Read rate, bytes per second, e.g. 20M.")
    write_bps: ByteRate | None = Field(None, description="Write rate, bytes per second, e.g. 20M.")
    read_iops: Count | None = Field(None, ge=1, description="Read operations per second.")
    write_iops: Count | None = Field(None, ge=1, description="Write operations per second.")


class Resources(_Strict):
    """Limits applied to every step and service of the job."""

    memory: Size | None = Field(None, description="Memory limit, e.g. 512M or 1G.")
    cpus: PositiveFloat | None = Field(None, description="CPU quota in CPUs, e.g. 1.5.")
    pids: Count | None = Field(
        None,
        ge=1,
        le=4194304,
        description="Maximum number of tasks (default 4096 per step; at most 4194304, the kernel's pid_max).",
    )
    disk: DiskSize | None = Field(
        None, description="Size of the job's writable layer, e.g. 2G: writing past it fails with ENOSPC."
    )
    io: IoLimits | None = Field(
        None, description="Disk I/O throttles of the job's writable layer and workspace."
    )
    bandwidth: Bandwidth | None = Field(
        None, description="Network bandwidth each way (bridge network), e.g. 10mbit, as tc writes it."
    )


class Security(_Strict):
    """The job's confinement; every relaxation is explicit and noted in the job's log."""

    seccomp: Literal["default", "unconfined"] = Field(
        "default",
        description="default: a syscall allow-list modelled on Docker's; unconfined: no syscall filter.",
    )
    userns: bool = Field(
        True,
        description="Run the job in a user namespace; false only for jobs that need the host's uids.",
    )


class Cache(_Strict):
    """Directories saved after the job and restored before it, under a key."""

    key: NonEmpty = Field(description="Cache key, e.g. pip-${{ hash_files('requirements*.txt') }}.")
    paths: list[NonEmpty] = Field(min_length=1, description="Absolute paths, or paths in the workspace.")


class Step(_Strict):
    """One step: a shell script run with `sh -e -c` in a fresh process tree."""

    name: NonEmpty | None = Field(None, description="Shown in logs (default: the first line of `run`).")
    run: NonEmpty = Field(description="The shell script.")
    when: Literal["on_success", "on_failure", "always"] = Field(
        "on_success", description="Run after earlier steps succeeded (default), failed, or always."
    )
    timeout: Duration | None = Field(None, description="Time limit of the step.")
    env: EnvMap = Field(default_factory=dict, description="Environment of this step only.")


StepField = Annotated[
    Annotated[NonEmpty, Tag("str")] | Annotated[Step, Tag("map")],
    _by_kind("a shell command or a mapping with run"),
]


class Reports(_Strict):
    """Test reports collected after the steps."""

    junit: GlobList = Field(default_factory=list, description="Globs of JUnit XML files in the workspace.")


class Matrix(BaseModel):
    """Axes (name: list of values) expanded into one job per combination, with include/exclude."""

    model_config = ConfigDict(extra="allow", defer_build=True)
    __pydantic_extra__: dict[str, list[Scalar]] = Field(init=False)

    include: list[dict[str, Scalar]] = Field(
        default_factory=list, description="Extend matching combinations with more values, or add new ones."
    )
    exclude: list[dict[str, Scalar]] = Field(
        default_factory=list, description="Remove the combinations matching all values of an entry."
    )

    def axes(self) -> dict[str, list[Any]]:
        return dict(self.__pydantic_extra__ or {})


class Job(_Strict):
    """A job: steps run in one throwaway container."""

    image: ImageField | None = Field(None, description="The job's image (default: the pipeline's).")
    needs: StrList = Field(default_factory=list, description="Jobs that must pass before this one starts.")
    matrix: Matrix | None = None
    env: EnvMap = Field(default_factory=dict, description="Environment of every step (over the pipeline's).")
    services: dict[JobName, Service] = Field(default_factory=dict, description="Sidecars, by name.")
    resources: Resources = Field(default_factory=lambda: Resources.model_validate({}))
    security: Security = Field(default_factory=lambda: Security.model_validate({}))
    network: Literal["none", "bridge", "host"] | None = Field(
        None, description="bridge (default: outbound only, never the host's loopback), none or host."
    )
    timeout: Duration | None = Field(None, description="Time limit of the whole job.")
    retry: Count = Field(0, ge=0, le=10, description="Reruns of a failed job.")
    allow_failure: bool = Field(False, description="A failure does not fail the pipeline.")
    if_: Condition = Field(True, alias="if", description="Run the job only when this is true.")
    cache: list[Cache] = Field(default_factory=list)
    secrets: list[EnvName] = Field(default_factory=list, description="Secrets injected as environment.")
    steps: list[StepField] = Field(min_length=1, description="The steps, in order.")
    artifacts: list[WorkspaceGlob] = Field(default_factory=list, description="Globs kept after the job.")
    reports: Reports = Field(default_factory=lambda: Reports())
    labels: list[NonEmpty] = Field(default_factory=list, description="Worker labels this job needs.")


class Push(_Strict):
    """Which pushes start a build: glob patterns."""

    branches: StrList | None = Field(None, description="Branch globs (default: every branch).")
    tags: StrList | None = Field(None, description="Tag globs (default: none).")


class On(_Strict):
    """Server-side triggers; `runner exec` ignores them."""

    push: Push | None = None


class Pipeline(_Strict):
    """A runner pipeline (ci.yml at the repository root)."""

    model_config = ConfigDict(title="runner ci.yml")

    image: ImageField = Field("host", description="Default image of every job.")
    env: EnvMap = Field(default_factory=dict, description="Pipeline-wide environment.")
    on: On = Field(default_factory=lambda: On())
    jobs: Annotated[dict[JobName, Job], Field(min_length=1)] = Field(description="The jobs, by name.")
