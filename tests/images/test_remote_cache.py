"""The registry-backed layer cache: a layer one worker built is pulled, not rebuilt, by another."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.images.build import Builder
from runner.sandbox import ContainerSpec, Rootfs, run
from runner.settings import Paths

pytestmark = pytest.mark.kernel

DOCKERFILE = """FROM host
COPY data.txt /opt/data.txt
RUN mkdir -p /usr/local/share/cached && cp /opt/data.txt /usr/local/share/cached/ && rm /usr/bin/env
ENV SHARED=yes
"""


def _context(tmp_path: Path) -> Path:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "data.txt").write_text("payload\n")
    return context


def test_second_worker_pulls_instead_of_building(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("RUNNER_CACHE_REGISTRY", f"{registry.host}/buildcache")
    context = _context(tmp_path)
    first: list[str] = []
    Builder(Paths(tmp_path / "worker-a"), out=first.append).build_dockerfile(context / "Dockerfile", context)
    assert sum("pushed" in line for line in first) == 2  # the COPY and the RUN layers

    import runner.sandbox.container as container

    spawned: list[object] = []
    real_spawn = container.spawn
    monkeypatch.setattr(container, "spawn", lambda *a, **k: spawned.append(a) or real_spawn(*a, **k))
    second: list[str] = []
    paths_b = Paths(tmp_path / "worker-b")
    built = Builder(paths_b, out=second.append).build_dockerfile(context / "Dockerfile", context)
    assert spawned == []  # nothing was built on the second worker
    assert sum(f"(from {registry.host}/buildcache)" in line for line in second) == 2, second

    monkeypatch.setattr(container, "spawn", real_spawn)
    out: list[bytes] = []
    with Rootfs.create(paths_b, layers=built.layer_dirs, base=built.base) as rootfs:
        script = "cat /usr/local/share/cached/data.txt; test -e /usr/bin/env || echo env-deleted"
        result = run(
            ContainerSpec(["sh", "-c", script], cwd="/"),
            rootfs=rootfs,
            paths=paths_b,
            on_output=lambda s, line: out.append(line),
        )
    assert result.ok and out == [b"payload", b"env-deleted"]  # the whiteout survived the round trip


def test_an_unreachable_cache_registry_does_not_fail_the_build(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_CACHE_REGISTRY", "127.0.0.1:1/buildcache")
    context = _context(tmp_path)
    lines: list[str] = []
    built = Builder(Paths(tmp_path / "home"), out=lines.append).build_dockerfile(
        context / "Dockerfile", context
    )
    assert built.image_id.startswith("sha256:")
    assert any(
        "cache registry 127.0.0.1:1/buildcache" in line and "building instead" in line for line in lines
    )


def test_images_built_on_host_are_not_exported_or_pushed(tmp_path, monkeypatch):
    from runner.images.cli_impl import export, push

    monkeypatch.delenv("RUNNER_CACHE_REGISTRY", raising=False)
    context = _context(tmp_path)
    paths = Paths(tmp_path / "home")
    Builder(paths, out=lambda line: None).build_dockerfile(context / "Dockerfile", context, tag="onhost:1")
    from runner.images.store import Store

    store = Store(paths)
    assert export(store, "onhost:1", str(tmp_path / "out.tar")) == 1
    assert not (tmp_path / "out.tar").exists()
    assert push(store, "127.0.0.1:1/x/onhost:1") == 1  # refused before any connection is tried
