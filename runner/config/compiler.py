"""Compiling a validated Document into a `PipelineSpec`: matrices expanded, expressions evaluated.

Environment layering, lowest first: pipeline `env`, job `env`, then `EvalContext.extra_env`.
Step `env` stays on the step. A job whose `image.from` names another job needs that job.
"""

from __future__ import annotations

import dataclasses
import posixpath
import shlex
from collections.abc import Callable
from typing import Any

from runner.config import expressions as ex
from runner.config import graph, matrix, models, spec
from runner.config.context import GIT_KEYS, EvalContext
from runner.config.document import Document
from runner.config.errors import ConfigError, Diagnostic
from runner.config.hashfiles import hash_files
from runner.config.units import parse_bandwidth, parse_byte_rate, parse_disk, parse_duration, parse_size
from runner.config.yamlsource import YamlPath

STEP_NAME_LIMIT = 60
SERVICE_READY_TIMEOUT = 30.0


def scalar_text(value: Any) -> str:
    """An env or matrix scalar as text: `true`, `3.10` as written, "" for null."""
    return matrix.value_text(value)


def step_name(run: str) -> str:
    """A default step name: the first non-blank line of its script, shortened."""
    first = next((line.strip() for line in run.splitlines() if line.strip()), "run")
    return first if len(first) <= STEP_NAME_LIMIT else first[: STEP_NAME_LIMIT - 3] + "..."


def check_workspace_path(value: str) -> None:
    """Artifact and report globs stay inside the workspace."""
    if value.startswith("/") or ".." in value.split("/"):
        raise ValueError(f"'{value}' must be relative to the workspace and stay inside it")


class _JobScope:
    """Evaluation of one expanded job's strings, recording failures as diagnostics."""

    def __init__(self, compiler: Compiler, name: str, base: str, combo: dict[str, Any]) -> None:
        self.compiler = compiler
        self.name = name
        self.base = base
        self.combo = combo
        self.env: dict[str, str] = {}

    def variables(self, env: dict[str, str]) -> dict[str, Any]:
        return {
            # a key that `include` gives only some combinations is '' in the others, as on GitHub;
            # a key no combination has stays an error (a typo)
            "matrix": ex.Namespace(
                "matrix", {**dict.fromkeys(self.compiler.matrix_keys.get(self.base, ()), ""), **self.combo}
            ),
            "env": ex.Namespace("env", env),
            "git": self.compiler.git,
            "job": ex.Namespace("job", {"name": self.name, "base_name": self.base}),
            "hash_files": self.compiler.hash_files,
        }

    def fail(self, path: YamlPath, message: str, value: str | None = None, offset: int = 0) -> None:
        doc = self.compiler.doc
        pos = doc.text_position(path, value, offset) if value is not None else doc.position(path)
        suffix = f" (in job '{self.name}')" if self.combo else ""
        self.compiler.errors.append(Diagnostic(pos.file, pos.line, pos.column, message + suffix))

    def text(self, path: YamlPath, value: Any, env: dict[str, str] | None = None) -> str:
        raw = scalar_text(value)
        if ex.START not in raw:
            return raw
        try:
            return str(ex.evaluate(raw, self.variables(self.env if env is None else env)))
        except ex.ExpressionError as exc:
            self.fail(path, exc.message, raw, exc.offset)
            return raw

    def texts(self, path: YamlPath, values: list[Any] | str) -> tuple[str, ...]:
        if isinstance(values, str):
            return (self.text(path, values),)
        return tuple(self.text((*path, i), v) for i, v in enumerate(values))

    def env_map(self, path: YamlPath, values: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
        return {k: self.text((*path, k), v, env) for k, v in values.items()}

    def unit(self, path: YamlPath, value: Any, parse: Callable[[Any], Any]) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = self.text(path, value)
            if ex.START in value:
                return None  # the expression failed and is reported already
        try:
            return parse(value)
        except ValueError as exc:
            self.fail(path, f"{exc}")
            return None

    def condition(self, path: YamlPath, value: bool | str) -> bool:
        if isinstance(value, bool):
            return value
        try:
            return ex.evaluate_condition(value, self.variables(self.env))
        except ex.ExpressionError as exc:
            self.fail(path, exc.message, value if ex.START in value else None, exc.offset)
            return False


class Compiler:
    """One compilation: expands every job's matrix, then builds a JobSpec per combination."""

    def __init__(self, doc: Document, context: EvalContext) -> None:
        self.doc = doc
        self.context = context
        self.errors: list[Diagnostic] = []
        self.git = ex.Namespace("git", {**dict.fromkeys(GIT_KEYS, ""), **context.git})
        self.expansions: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self.matrix_keys: dict[str, list[str]] = {}  # every key any combination of a job has

    def hash_files(self, *patterns: Any) -> str:
        return hash_files(self.context.workspace, tuple(str(p) for p in patterns))

    def compile(self) -> spec.PipelineSpec:
        pipeline = self.doc.model
        for base, job in pipeline.jobs.items():
            combos: list[dict[str, Any]] = [{}]
            if job.matrix is not None:
                try:
                    combos = matrix.expand(job.matrix.axes(), job.matrix.include, job.matrix.exclude)
                except matrix.MatrixError as exc:  # load() reports these; be safe anyway
                    self.errors.append(self._diag(("jobs", base, "matrix"), str(exc)))
                    combos = []
            self.expansions[base] = [(matrix.job_name(base, c), c) for c in combos]
            self.matrix_keys[base] = sorted({key for combo in combos for key in combo})
        jobs: dict[str, spec.JobSpec] = {}
        for base, job in pipeline.jobs.items():
            for name, combo in self.expansions[base]:
                jobs[name] = self.job(_JobScope(self, name, base, combo), job)
        if self.errors:
            raise ConfigError(self.errors)
        order = graph.topological_order({name: list(job.needs) for name, job in jobs.items()})
        for name in order:  # `image.from: <job>`: that job's image (already final: it comes earlier)
            job_spec = jobs[name]
            expansions = self.expansions.get(job_spec.image.ref)
            if expansions and job_spec.image.ref != job_spec.base_name:
                image = dataclasses.replace(job_spec.image, base=jobs[expansions[0][0]].image)
                jobs[name] = dataclasses.replace(job_spec, image=image)
        return spec.PipelineSpec(tuple(jobs[n] for n in order), self.triggers(), self.doc.file)

    def _diag(self, path: YamlPath, message: str) -> Diagnostic:
        pos = self.doc.position(path)
        return Diagnostic(pos.file, pos.line, pos.column, message)

    def triggers(self) -> spec.Triggers:
        push = self.doc.model.on.push
        if push is None or (push.branches is None and push.tags is None):
            return spec.Triggers()
        branches = [push.branches] if isinstance(push.branches, str) else push.branches or []
        tags = [push.tags] if isinstance(push.tags, str) else push.tags or []
        return spec.Triggers(tuple(branches), tuple(tags))

    def job(self, scope: _JobScope, job: models.Job) -> spec.JobSpec:
        base = scope.base
        path: YamlPath = ("jobs", base)
        extra = dict(self.context.extra_env)
        pipeline_env = scope.env_map(("env",), self.doc.model.env, extra)
        job_env = scope.env_map((*path, "env"), job.env, {**pipeline_env, **extra})
        scope.env = {**pipeline_env, **job_env, **extra}
        image = self.image(scope, job)
        return spec.JobSpec(
            name=scope.name,
            base_name=base,
            steps=tuple(self.step(scope, (*path, "steps", i), s) for i, s in enumerate(job.steps)),
            matrix={k: scalar_text(v) for k, v in scope.combo.items()},
            image=image,
            env=dict(scope.env),
            needs=self.needs(base, job),
            services=tuple(self.service(scope, n, s, image) for n, s in job.services.items()),
            resources=self.resources(scope, path, job),
            security=spec.Security(seccomp=job.security.seccomp, userns=job.security.userns),
            network=job.network or "bridge",  # contract: outbound only, never the host loopback
            timeout=scope.unit((*path, "timeout"), job.timeout, parse_duration),
            retry=job.retry,
            allow_failure=job.allow_failure,
            condition=scope.condition((*path, "if"), job.if_),
            cache=tuple(self.cache(scope, (*path, "cache", i), c) for i, c in enumerate(job.cache)),
            secrets=tuple(job.secrets),
            artifacts=self.workspace_globs(scope, (*path, "artifacts"), job.artifacts),
            reports_junit=self.workspace_globs(scope, (*path, "reports", "junit"), job.reports.junit),
            labels=scope.texts((*path, "labels"), job.labels),
            position=self.doc.position(path, key=True),
        )

    def resources(self, scope: _JobScope, path: YamlPath, job: models.Job) -> spec.Resources:
        res, at = job.resources, (*path, "resources")
        io = res.io or models.IoLimits.model_validate({})
        bandwidth = scope.unit((*at, "bandwidth"), res.bandwidth, parse_bandwidth)
        if bandwidth is not None and job.network in ("none", "host"):
            scope.fail(
                (*at, "bandwidth"), f"bandwidth shapes a bridge network; this job's network is {job.network}"
            )
        return spec.Resources(
            memory=scope.unit((*at, "memory"), res.memory, parse_size),
            cpus=res.cpus,
            pids=res.pids,
            disk=scope.unit((*at, "disk"), res.disk, parse_disk),
            io_read_bps=scope.unit((*at, "io", "read_bps"), io.read_bps, parse_byte_rate),
            io_write_bps=scope.unit((*at, "io", "write_bps"), io.write_bps, parse_byte_rate),
            io_read_iops=io.read_iops,
            io_write_iops=io.write_iops,
            bandwidth=bandwidth,
        )

    def cache(self, scope: _JobScope, path: YamlPath, cache: models.Cache) -> spec.CacheSpec:
        return spec.CacheSpec(
            scope.text((*path, "key"), cache.key), scope.texts((*path, "paths"), cache.paths)
        )

    def needs(self, base: str, job: models.Job) -> tuple[str, ...]:
        wanted = [job.needs] if isinstance(job.needs, str) else list(job.needs)
        image = job.image
        if isinstance(image, models.ImageBuild) and image.from_ in self.expansions and image.from_ != base:
            wanted.append(image.from_)
        names: list[str] = []
        for need in wanted:
            for name, _ in self.expansions.get(need, []):
                if name not in names:
                    names.append(name)
        return tuple(names)

    def workspace_globs(self, scope: _JobScope, path: YamlPath, values: list[str] | str) -> tuple[str, ...]:
        result = scope.texts(path, values)
        for index, value in enumerate(result):
            try:
                check_workspace_path(value)
            except ValueError as exc:
                scope.fail(path if isinstance(values, str) else (*path, index), str(exc))
        return result

    def image(self, scope: _JobScope, job: models.Job) -> spec.ImageSpec:
        image = job.image
        path: YamlPath = ("jobs", scope.base, "image")
        if image is None:
            image, path = self.doc.model.image, ("image",)
        if isinstance(image, str):
            return spec.ImageSpec(ref=scope.text(path, image))
        default_base = self.doc.model.image if isinstance(self.doc.model.image, str) else "host"
        ref = scope.text((*path, "from"), image.from_ or default_base)
        build = tuple(self.instruction(scope, (*path, "build", i), b) for i, b in enumerate(image.build))
        dockerfile = scope.text((*path, "dockerfile"), image.dockerfile) if image.dockerfile else None
        context = scope.text((*path, "context"), image.context) if image.context else None
        return spec.ImageSpec(ref=ref, build=build, dockerfile=dockerfile, context=context)

    def instruction(self, scope: _JobScope, path: YamlPath, entry: models.BuildStep) -> spec.BuildInstruction:
        if entry.copy_ is not None:
            src = scope.text((*path, "copy"), entry.copy_)
            if src.startswith("/") or ".." in src.split("/"):
                scope.fail(
                    (*path, "copy"), f"'{src}' must be relative to the build context and stay inside it"
                )
            dest = scope.text((*path, "to"), entry.to) if entry.to else posixpath.join("/src", src)
            return spec.BuildInstruction("copy", (src, dest))
        if entry.run is not None:
            return spec.BuildInstruction("run", (scope.text((*path, "run"), entry.run),))
        if entry.env is not None:
            values = scope.env_map((*path, "env"), entry.env, scope.env)
            return spec.BuildInstruction("env", tuple(f"{k}={v}" for k, v in values.items()))
        return spec.BuildInstruction("workdir", (scope.text((*path, "workdir"), entry.workdir),))

    def service(
        self, scope: _JobScope, name: str, service: models.Service, job_image: spec.ImageSpec
    ) -> spec.ServiceSpec:
        path: YamlPath = ("jobs", scope.base, "services", name)
        image = job_image
        if service.image:
            image = spec.ImageSpec(ref=scope.text((*path, "image"), service.image))
        command: tuple[str, ...] = ()
        if isinstance(service.command, str):
            text = scope.text((*path, "command"), service.command)
            try:
                command = tuple(shlex.split(text))
            except ValueError as exc:
                scope.fail((*path, "command"), f"cannot split command: {exc}")
        elif service.command is not None:
            command = scope.texts((*path, "command"), service.command)
        timeout = scope.unit((*path, "ready_timeout"), service.ready_timeout, parse_duration)
        return spec.ServiceSpec(
            name=name,
            image=image,
            command=command,
            env=scope.env_map((*path, "env"), service.env, scope.env),
            ready=scope.text((*path, "ready"), service.ready) if service.ready else None,
            ready_timeout=SERVICE_READY_TIMEOUT if timeout is None else timeout,
        )

    def step(self, scope: _JobScope, path: YamlPath, step: models.Step | str) -> spec.StepSpec:
        if isinstance(step, str):
            step = models.Step.model_construct(run=step)
            run_path: YamlPath = path
        else:
            run_path = (*path, "run")
        step_env = scope.env_map((*path, "env"), step.env, scope.env)
        env = {**scope.env, **step_env}
        run = scope.text(run_path, step.run, env)
        name = scope.text((*path, "name"), step.name, env) if step.name else step_name(run)
        return spec.StepSpec(
            name=name,
            run=run,
            when=step.when,
            timeout=scope.unit((*path, "timeout"), step.timeout, parse_duration),
            env=step_env,
            position=self.doc.position(path),
        )


def compile_document(doc: Document, context: EvalContext) -> spec.PipelineSpec:
    """The PipelineSpec of a loaded document; raises ConfigError listing every failure."""
    return Compiler(doc, context).compile()
