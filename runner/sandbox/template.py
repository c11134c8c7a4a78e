"""Template mount namespaces: a job's root filesystem mounted once, copied by every container over it.

Mounting three overlays, a /dev and a /sys costs more than everything else a container does, and it
is the same for every step of a job. So the first container over a Rootfs forks a short-lived helper
that mounts them in a fresh mount namespace (private propagation: nothing reaches the host), and keeps
an fd to that namespace. Each container then `setns`es into it and `unshare`s a copy of its own, in
which it mounts only what is its own (/proc, the workspace) before pivot_root. The fd is the only
thing holding the namespace: closing it (or the runner dying) unmounts everything.

Containers in a user namespace get a template of their own, whose overlays sit on idmapped layers
(see userns.py): one per rootfs, network and mapping.
"""

from __future__ import annotations

from runner.sandbox import mounts, syscalls, userns
from runner.sandbox.network import NetworkNamespace
from runner.sandbox.nsholder import namespace_fd
from runner.sandbox.rootfs import Rootfs
from runner.sandbox.types import IdMap


def _key(network: NetworkNamespace | None) -> object:
    if network is None:
        return "own"  # each container makes its own network namespace
    if network.fd is None:
        return "host"
    return ("ns", network.fd)


def mount_namespace(
    rootfs: Rootfs,
    plan: mounts.MountPlan,
    network: NetworkNamespace | None,
    idmap: IdMap | None = None,
) -> int:
    """The fd of the template mount namespace for containers over `rootfs` in `network`, made on
    first use; with `idmap`, its overlays are on idmapped layers (for containers in that user namespace)."""
    key = (_key(network), idmap)
    with rootfs.lock:  # containers over one rootfs may start from several threads at once
        fd = rootfs.templates.get(key)
        if fd is None:
            fd = rootfs.templates[key] = _create(plan, network, idmap)
        return fd


def _create(plan: mounts.MountPlan, network: NetworkNamespace | None, idmap: IdMap | None) -> int:
    fd_userns = userns.userns_fd(idmap) if idmap is not None else None

    def setup() -> None:
        flags = syscalls.CLONE_NEWNS
        if network is None:
            flags |= syscalls.CLONE_NEWNET  # so /sys shows an empty network, not the host's
        syscalls.unshare(flags)
        if network is not None and network.fd is not None:
            syscalls.setns(network.fd, syscalls.CLONE_NEWNET)
            if idmap is not None:  # the job's own network namespace, never the host's
                userns.open_low_ports()
        mounts.prepare_template(plan, idmap, fd_userns)

    return namespace_fd("mnt", setup, "mount the root filesystem")
