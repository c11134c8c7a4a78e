"""Template mount namespaces: a job's root filesystem mounted once, copied by every container over it.

Mounting three overlays, a /dev and a /sys costs more than everything else a container does, and it
is the same for every step of a job. So the first container over a Rootfs forks a short-lived helper
that mounts them in a fresh mount namespace (private propagation: nothing reaches the host), and keeps
an fd to that namespace. Each container then `setns`es into it and `unshare`s a copy of its own, in
which it mounts only what is its own (/proc, the workspace) before pivot_root. The fd is the only
thing holding the namespace: closing it (or the runner dying) unmounts everything.
"""

from __future__ import annotations

from runner.sandbox import mounts, syscalls
from runner.sandbox.network import NetworkNamespace
from runner.sandbox.nsholder import namespace_fd
from runner.sandbox.rootfs import Rootfs


def _key(network: NetworkNamespace | None) -> object:
    if network is None:
        return "own"  # each container makes its own network namespace
    if network.fd is None:
        return "host"
    return ("ns", network.fd)


def mount_namespace(rootfs: Rootfs, plan: mounts.MountPlan, network: NetworkNamespace | None) -> int:
    key = _key(network)
    with rootfs.lock:  # containers over one rootfs may start from several threads at once
        fd = rootfs.templates.get(key)
        if fd is None:
            fd = rootfs.templates[key] = _create(plan, network)
        return fd


def _create(plan: mounts.MountPlan, network: NetworkNamespace | None) -> int:
    def setup() -> None:
        flags = syscalls.CLONE_NEWNS
        if network is None:
            flags |= syscalls.CLONE_NEWNET  # so /sys shows an empty network, not the host's
        syscalls.unshare(flags)
        if network is not None and network.fd is not None:
            syscalls.setns(network.fd, syscalls.CLONE_NEWNET)
        mounts.prepare_template(plan)

    return namespace_fd("mnt", setup, "mount the root filesystem")
