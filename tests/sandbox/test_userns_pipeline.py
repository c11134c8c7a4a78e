"""User namespaces through the pipeline and image builds: owners on disk, caches, the job log's line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.config.spec import CacheSpec, JobSpec, PipelineSpec, Security, StepSpec
from runner.images.build import Builder
from runner.pipeline import RunOptions, run_pipeline
from runner.pipeline.caches import CacheStore
from runner.pipeline.events import Collector, LogLine
from runner.sandbox import userns
from runner.settings import Paths

pytestmark = pytest.mark.kernel


def _job(*scripts: str, **kw: object) -> JobSpec:
    steps = tuple(StepSpec(name=f"s{i}", run=script) for i, script in enumerate(scripts))
    return JobSpec(name="j", base_name="j", steps=steps, **kw)  # type: ignore[arg-type]


def _run(tmp_path: Path, job: JobSpec, paths: Paths) -> tuple[str, Collector]:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    sink = Collector()
    options = RunOptions(workspace=src, paths=paths, artifacts_dir=tmp_path / "artifacts")
    result = run_pipeline(PipelineSpec((job,)), options, sink, None)
    return result.jobs["j"].status, sink


def _log(sink: Collector, stream: str | None = None) -> list[str]:
    return [e.text for e in sink.of(LogLine) if stream is None or e.stream == stream]


def test_a_job_runs_as_container_root_and_caches_keep_owners(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "home")
    cache = CacheSpec(key="tool-v1", paths=("/root/.cache/tool",))
    fill = (
        "mkdir -p /root/.cache/tool && touch /root/.cache/tool/mine && touch /root/.cache/tool/theirs"
        " && chown 1000:1000 /root/.cache/tool/theirs; id -u; awk '{print $2}' /proc/self/uid_map;"
        " echo K=v >> $RUNNER_ENV; mkdir -p dist && touch dist/out.whl"
    )
    job = _job(fill, 'echo "K=$K"', cache=(cache,), artifacts=("dist/*.whl",))
    status, sink = _run(tmp_path, job, paths)
    assert status == "passed", _log(sink)
    assert _log(sink, "stdout") == ["0", str(userns.default_idmap().host_start), "K=v"]
    assert not [line for line in _log(sink, "runner") if "user namespace" in line]
    entry = CacheStore(paths.caches).lookup("tool-v1")
    assert entry is not None
    data = entry.dir / "data" / "0"
    assert (data / "mine").stat().st_uid == 0 and (data / "theirs").stat().st_uid == 1000
    assert (tmp_path / "artifacts" / "j" / "dist" / "out.whl").stat().st_uid == 0
    # the next run restores the cache with the same owners, seen from inside
    check = "stat -c '%u %n' /root/.cache/tool/mine /root/.cache/tool/theirs"
    status, sink = _run(tmp_path, _job(check, cache=(cache,)), paths)
    assert status == "passed", _log(sink)
    assert _log(sink, "stdout") == ["0 /root/.cache/tool/mine", "1000 /root/.cache/tool/theirs"]


def test_security_userns_false_says_so_in_the_job_log(tmp_path: Path) -> None:
    job = _job("awk '{print $2}' /proc/self/uid_map", security=Security(userns=False))
    status, sink = _run(tmp_path, job, Paths(tmp_path / "home"))
    assert status == "passed"
    assert _log(sink, "stdout") == ["0"]  # the host's root, not a subordinate uid
    lines = [line for line in _log(sink, "runner") if "user namespace" in line]
    assert lines == [f"user namespace off (security: {{userns: false}} in ci.yml): {userns.FALLBACK}"]
    assert userns.FALLBACK == "running as the host's root with a reduced capability set instead"


def test_runner_userns_off_says_so_in_the_job_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_USERNS", "off")
    status, sink = _run(tmp_path, _job("awk '{print $2}' /proc/self/uid_map"), Paths(tmp_path / "home"))
    assert status == "passed" and _log(sink, "stdout") == ["0"]
    assert [line for line in _log(sink, "runner") if "user namespace" in line] == [
        f"user namespace off (RUNNER_USERNS=off): {userns.FALLBACK}"
    ]


def test_a_run_steps_layer_records_container_root_as_uid_0(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "home")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM host\n"
        "RUN mkdir /opt/app && echo hi > /opt/app/root-file && touch /opt/app/user-file"
        " && chown 1000:1001 /opt/app/user-file && chmod u+s /opt/app/root-file"
        " && awk '{print $2}' /proc/self/uid_map > /opt/app/mapped\n"
    )
    lines: list[str] = []
    built = Builder(paths, out=lines.append).build_dockerfile(context / "Dockerfile", context)
    layer = built.layer_dirs[0]
    app = layer / "opt" / "app"
    assert (app / "mapped").read_text().strip() == str(userns.default_idmap().host_start)  # it ran mapped
    for path in (layer / "opt", app, app / "root-file"):
        assert (path.stat().st_uid, path.stat().st_gid) == (0, 0), path
    assert (app / "root-file").stat().st_mode & 0o4000  # setuid survives: a real root-owned file
    user_file = (app / "user-file").stat()
    assert (user_file.st_uid, user_file.st_gid) == (1000, 1001)
    assert not [line for line in lines if "user namespace" in line]
    assert os.stat(layer).st_uid == 0
