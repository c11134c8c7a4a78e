#!/usr/bin/env python3
"""What a user namespace costs a container: ours with and without one, beside bwrap with and without one.

Our containers are started alternately with `userns=None` and `userns="auto"` from one warm process over
one rootfs (a job's steps: `/bin/true`, cgroup limits, the job's network joined, the workspace bound), so
the machine's load falls on both the same way; the first container of a job (which mounts the template
namespace, with idmapped layers or without) is timed over fresh root filesystems. bwrap runs the same
`true` as a whole command with `--unshare-all` and with `--unshare-all --unshare-user`.

Usage: python3 benchmarks/userns_start.py [-n 200] [--first 20]   (as root)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.sandbox import ContainerSpec, Limits, NetworkNamespace, Rootfs, run
from runner.settings import Paths


def ms_since(began: float) -> float:
    return (time.perf_counter() - began) * 1000


def ours(n: int, first: int, home: Path) -> dict[str, list[float]]:
    paths = Paths(home)
    workspace = home / "ws"
    workspace.mkdir(parents=True)
    limits = Limits(memory=256 << 20, cpus=1.0, pids=64)
    modes: dict[str, Literal["auto"] | None] = {"off": None, "auto": "auto"}

    def spec(name: str) -> ContainerSpec:
        return ContainerSpec(["/bin/true"], workspace=workspace, limits=limits, userns=modes[name])

    times: dict[str, list[float]] = {"off": [], "auto": [], "first off": [], "first auto": []}
    with NetworkNamespace.create("none") as net:
        with Rootfs.create(paths) as rootfs:
            for name in modes:  # warm-up: both templates mounted
                run(spec(name), rootfs=rootfs, network=net, paths=paths)
            if rootfs.userns is None:
                raise SystemExit(f"no user namespace here: {rootfs.userns_note}")
            for i in range(n):
                for name in ("off", "auto") if i % 2 else ("auto", "off"):
                    began = time.perf_counter()
                    if not run(spec(name), rootfs=rootfs, network=net, paths=paths).ok:
                        raise SystemExit("a container failed")
                    times[name].append(ms_since(began))
        for _ in range(first):
            for name in ("off", "auto"):
                with Rootfs.create(paths) as rootfs:
                    began = time.perf_counter()
                    run(spec(name), rootfs=rootfs, network=net, paths=paths)
                    times[f"first {name}"].append(ms_since(began))
    return times


def bwrap(n: int) -> dict[str, list[float]] | None:
    if shutil.which("bwrap") is None:
        return None
    base = ["bwrap", "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{name}"
        if os.path.islink(path):
            base += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            base += ["--ro-bind", path, path]
    base += ["--proc", "/proc", "--dev", "/dev", "--unshare-all"]
    argvs = {"bwrap": [*base, "true"], "bwrap --unshare-user": [*base, "--unshare-user", "true"]}
    times: dict[str, list[float]] = {name: [] for name in argvs}
    for i in range(n):
        for name in list(argvs) if i % 2 else list(argvs)[::-1]:
            began = time.perf_counter()
            subprocess.run(argvs[name], check=True)
            times[name].append(ms_since(began))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="containers per variant (default 200)")
    parser.add_argument("--first", type=int, default=20, help="first containers of a job per variant")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours_times = ours(args.n, args.first, Path(tmp) / "home")
    peers = bwrap(args.n)
    p50 = {name: statistics.median(xs) for name, xs in ours_times.items() if xs}
    print(f"load average: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    print("                                     p50 ms   userns/none")
    print(f"  runner step container, no userns  {p50['off']:7.2f}")
    print(f"  runner step container, userns     {p50['auto']:7.2f}   {p50['auto'] / p50['off']:.2f}x")
    if args.first:
        ratio = p50["first auto"] / p50["first off"]
        print(f"  runner first of a job, no userns  {p50['first off']:7.2f}")
        print(f"  runner first of a job, userns     {p50['first auto']:7.2f}   {ratio:.2f}x")
    if peers is not None:
        b = {name: statistics.median(xs) for name, xs in peers.items()}
        ratio = b["bwrap --unshare-user"] / b["bwrap"]
        print(f"  bwrap --unshare-all               {b['bwrap']:7.2f}")
        print(f"  bwrap --unshare-all --unshare-user{b['bwrap --unshare-user']:7.2f}   {ratio:.2f}x")
    else:
        print("  (bwrap is not installed: no peer figure)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
