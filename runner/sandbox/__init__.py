"""runner.sandbox: containers made from Linux namespaces, cgroups and overlayfs, with nothing but ctypes.

    rootfs = Rootfs.create(paths)                 # the `host` image under a throwaway upper dir
    with NetworkNamespace.create("none") as net:  # one per job, joined by its steps and services
        result = run(ContainerSpec(["make", "test"], workspace=checkout), rootfs=rootfs, network=net)

The package knows nothing of pipelines: it runs one process tree at a time, well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner.sandbox.types import ContainerSpec, IdMap, Limits, Mount, Result, SandboxError

if TYPE_CHECKING:
    from runner.sandbox.container import Container, run, spawn
    from runner.sandbox.network import NetworkNamespace
    from runner.sandbox.rootfs import Rootfs

_LAZY = {
    "Container": "runner.sandbox.container",
    "run": "runner.sandbox.container",
    "spawn": "runner.sandbox.container",
    "NetworkNamespace": "runner.sandbox.network",
    "Rootfs": "runner.sandbox.rootfs",
}


def __getattr__(name: str) -> Any:
    """The engine's modules load on first use: the value types and SandboxError stay cheap to import."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runner.sandbox' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)


__all__ = [
    "Container",
    "ContainerSpec",
    "IdMap",
    "Limits",
    "Mount",
    "NetworkNamespace",
    "Result",
    "Rootfs",
    "SandboxError",
    "run",
    "spawn",
]
