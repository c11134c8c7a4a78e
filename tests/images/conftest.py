"""Fixtures of the image tests: a store in a temp RUNNER_HOME, a real docker-registry, isolated buildah."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from runner.images.store import Store
from runner.settings import Paths

Run = Callable[..., subprocess.CompletedProcess[str]]


def need(binary: str) -> str:
    """The path of a tool an interop test needs; if missing the test fails (CI installs it), never skips."""
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed: apt-get install -y docker-registry buildah skopeo umoci")
    return path


def run(*argv: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "home")


@pytest.fixture
def store(paths: Paths) -> Store:
    return Store(paths)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    storage: Path

    def blob_data(self, digest: str) -> Path:
        hexpart = digest.partition(":")[2]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"


def start_registry(tmp: Path, extra_config: str = "") -> tuple[subprocess.Popen[bytes], Registry]:
    binary = need("docker-registry")
    port = free_port()
    storage = tmp / "registry-data"
    storage.mkdir(parents=True)
    config = tmp / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + extra_config
    )
    log = open(tmp / "registry.log", "wb")  # noqa: SIM115 - kept open for the process's lifetime
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code in (200, 401):
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"docker-registry did not start: {(tmp / 'registry.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, Registry(f"127.0.0.1:{port}", storage)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


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
