"""Fixtures for sandbox tests: a private RUNNER_HOME and helpers to run a container and collect its output."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.sandbox import ContainerSpec, NetworkNamespace, Result, Rootfs, run
from runner.settings import Paths

if os.geteuid() != 0:
    pytest.skip("sandbox tests need root (namespaces, cgroups, overlayfs)", allow_module_level=True)


@dataclass
class Ran:
    result: Result
    stdout: str
    stderr: str


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "home")


@pytest.fixture
def rootfs(paths: Paths) -> Iterator[Rootfs]:
    with Rootfs.create(paths) as r:
        yield r


@pytest.fixture
def net() -> Iterator[NetworkNamespace]:
    with NetworkNamespace.create("none") as n:
        yield n


@pytest.fixture
def sh(paths: Paths, rootfs: Rootfs, net: NetworkNamespace):
    """sh(script, **spec_fields) runs `sh -c script` over the test's rootfs and returns a Ran."""

    def runner(script: str, **fields: object) -> Ran:
        out: list[bytes] = []
        err: list[bytes] = []

        def collect(stream: str, line: bytes) -> None:
            (out if stream == "stdout" else err).append(line)

        fields.setdefault("cwd", "/")
        spec = ContainerSpec(argv=["sh", "-c", script], **fields)  # type: ignore[arg-type]
        result = run(spec, rootfs=rootfs, network=net, on_output=collect, paths=paths)
        return Ran(result, "\n".join(x.decode() for x in out), "\n".join(x.decode() for x in err))

    return runner
