"""runner.sandbox: containers made from Linux namespaces, cgroups and overlayfs, with nothing but ctypes.

    rootfs = Rootfs.create(paths)                 # the `host` image under a throwaway upper dir
    with NetworkNamespace.create("none") as net:  # one per job, joined by its steps and services
        result = run(ContainerSpec(["make", "test"], workspace=checkout), rootfs=rootfs, network=net)

The package knows nothing of pipelines: it runs one process tree at a time, well.
"""

from runner.sandbox.container import Container, run, spawn
from runner.sandbox.network import NetworkNamespace
from runner.sandbox.rootfs import Rootfs
from runner.sandbox.types import ContainerSpec, IdMap, Limits, Mount, Result, SandboxError

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
