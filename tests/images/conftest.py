"""Fixtures of the image tests: a store in a temp RUNNER_HOME, a real docker-registry, isolated buildah."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_helpers import Registry, Run, need, run, start_registry, stop

from runner.images.store import Store
from runner.settings import Paths


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "home")


@pytest.fixture
def store(paths: Paths) -> Store:
    return Store(paths)


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    proc, reg = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield reg
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def module_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """One registry for the tests of a module that only read from it."""
    proc, reg = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield reg
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def buildah(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """`buildah` with its own storage (vfs driver) so tests never touch the machine's containers."""
    binary = need("buildah")
    root = tmp_path_factory.mktemp("buildah")
    base = [binary, "--root", str(root / "root"), "--runroot", str(root / "run"), "--storage-driver", "vfs"]

    def call(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(*base, *args, check=check)

    yield call
    subprocess.run([*base, "rm", "--all"], capture_output=True, timeout=60, check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials come only from what a test sets, never from the machine's ~/.docker."""
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text('{"auths": {}}')  # buildah and skopeo insist on one existing
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    monkeypatch.delenv("RUNNER_REGISTRY_AUTH", raising=False)
    monkeypatch.delenv("RUNNER_INSECURE_REGISTRIES", raising=False)
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
