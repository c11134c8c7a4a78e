"""Caches across two runs: a miss saves, the next run hits and finds the files in place."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_helpers import job, out, run, step

from runner.config.spec import CacheSpec
from runner.pipeline.caches import CacheStore
from runner.settings import Paths

pytestmark = pytest.mark.kernel

FILL = (
    "if [ -e /root/.cache/tool/blob ]; then echo warm; else echo cold; mkdir -p /root/.cache/tool; "
    "echo data > /root/.cache/tool/blob; mkdir -p deps; echo dep > deps/lib; fi"
)


def test_second_run_hits_and_restores_absolute_and_relative_paths(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "home")
    cache = CacheSpec(key="tool-v1", paths=("/root/.cache/tool", "deps"))
    spec = job(
        "build",
        step(FILL, name="fill"),
        step("cat /root/.cache/tool/blob deps/lib", name="check"),
        cache=(cache,),
    )
    first, sink1 = run(tmp_path, spec, paths=paths)
    assert first.status == "passed", first.jobs["build"].reason
    assert "cache miss tool-v1" in out(sink1, "build", stream="runner")
    assert out(sink1, "build", "fill") == ["cold"]
    entry = CacheStore(paths.caches).lookup("tool-v1")
    assert entry is not None and entry.size > 0

    second, sink2 = run(tmp_path, spec, paths=paths)
    assert second.status == "passed", second.jobs["build"].reason
    assert "cache hit tool-v1" in out(sink2, "build", stream="runner")
    assert out(sink2, "build", "fill") == ["warm"]
    assert out(sink2, "build", "check") == ["data", "dep"]


def test_failed_job_saves_nothing(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "home")
    cache = CacheSpec(key="broken", paths=("/root/.cache/x",))
    result, _ = run(
        tmp_path,
        job("j", "mkdir -p /root/.cache/x; touch /root/.cache/x/f; exit 1", cache=(cache,)),
        paths=paths,
    )
    assert result.status == "failed"
    assert CacheStore(paths.caches).lookup("broken") is None


def test_cache_whose_paths_do_not_exist_is_not_saved(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "home")
    cache = CacheSpec(key="empty", paths=("/root/.cache/never", "never-made"))
    result, sink = run(tmp_path, job("j", "true", cache=(cache,)), paths=paths)
    assert result.status == "passed"
    assert CacheStore(paths.caches).lookup("empty") is None
    assert any("cache empty not saved: none of its paths exist" in line for line in out(sink, "j"))
