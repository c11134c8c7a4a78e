#!/usr/bin/env python3
"""What the limits Docker never had cost a job at its start, each beside the same start without it.

  disk       a job's root filesystem made, its first container run (`/bin/true`) and all torn down,
             without `disk:` and with `disk: 2G` (sparse image, mkfs.ext4, loop device, ext4 mount in the
             template namespace). Docker itself has no such limit on overlay2 without xfs project quotas.
  bandwidth  a bridge network (slirp4netns) made and closed, without and with `bandwidth: 10mbit`
             (an ifb device and three tc qdiscs in the job's namespace).
  io         one container with and without io limits (a blkio cgroup and its throttle lines).

Usage: python3 benchmarks/limits_start.py [-n 30]   (as root)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def sample(n: int, action: Callable[[], None]) -> list[float]:
    for _ in range(3):
        action()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def show(name: str, base: list[float], limited: list[float]) -> None:
    b, li = statistics.median(base), statistics.median(limited)
    print(f"{name:10} without {b:7.1f} ms   with {li:7.1f} ms   +{li - b:6.1f} ms   ratio {li / b:4.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=30)
    args = parser.parse_args()
    from runner.sandbox import ContainerSpec, Limits, NetworkNamespace, Rootfs, run
    from runner.settings import Paths

    with tempfile.TemporaryDirectory(prefix="limits-bench-") as tmp:
        paths = Paths(Path(tmp) / "home")
        workspace = Path(tmp) / "ws"
        workspace.mkdir()
        spec = ContainerSpec(["/bin/true"], cwd="/", workspace=workspace)

        def job_start(disk: int | None) -> Callable[[], None]:
            def go() -> None:
                with Rootfs.create(paths) as rootfs:
                    if disk is not None:
                        rootfs.limit_disk(disk)
                    assert run(spec, rootfs=rootfs, paths=paths).ok

            return go

        show("disk", sample(args.n, job_start(None)), sample(args.n, job_start(2 << 30)))

        def network(bandwidth: int | None) -> Callable[[], None]:
            def go() -> None:
                NetworkNamespace.create("bridge", bandwidth=bandwidth).close()

            return go

        show("bandwidth", sample(args.n, network(None)), sample(args.n, network(10_000_000)))

        with Rootfs.create(paths) as rootfs:
            io_spec = ContainerSpec(
                ["/bin/true"], cwd="/", workspace=workspace, limits=Limits(io_write_bps=10 << 20)
            )
            show(
                "io",
                sample(args.n, lambda: run(spec, rootfs=rootfs, paths=paths) and None),
                sample(args.n, lambda: run(io_spec, rootfs=rootfs, paths=paths) and None),
            )


if __name__ == "__main__":
    main()
