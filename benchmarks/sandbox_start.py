#!/usr/bin/env python3
"""Container start-run-teardown cost: ours beside bwrap, runc and docker, from the same run.

Two views, both printed with ratios:
  warm   N containers from one warm process, the way a job runs its steps: overlay rootfs from the
         `host` image, cgroup limits (memory, cpu, pids), pid/mount/ipc/uts/cgroup namespaces, a
         shared network namespace joined, the workspace bound, `/bin/true`, torn down.
  cold   one whole command per container (`runner sandbox -- true`, `bwrap ... true`, `runc run`,
         `docker run --rm`), timed from the outside the same way for every tool.

Usage: python3 benchmarks/sandbox_start.py [-n 200] [--cold 30]   (as root)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def ours_warm(n: int, home: Path) -> list[float]:
    from runner.sandbox import ContainerSpec, Limits, NetworkNamespace, Rootfs, run
    from runner.settings import Paths

    paths = Paths(home)
    workspace = home / "ws"
    workspace.mkdir(parents=True, exist_ok=True)
    spec = ContainerSpec(
        ["/bin/true"], workspace=workspace, limits=Limits(memory=256 << 20, cpus=1, pids=256)
    )
    samples = []
    with Rootfs.create(paths) as rootfs, NetworkNamespace.create("none") as net:
        for _ in range(10):
            run(spec, rootfs=rootfs, network=net, paths=paths)
        for _ in range(n):
            start = time.perf_counter()
            result = run(spec, rootfs=rootfs, network=net, paths=paths)
            samples.append((time.perf_counter() - start) * 1000)
            assert result.ok, result
    return samples


def time_command(argv: list[str], n: int, env: dict[str, str] | None = None) -> list[float]:
    for _ in range(3):
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def bwrap_argv() -> list[str]:
    argv = [
        "bwrap",
        "--unshare-all",
        "--die-with-parent",
        "--ro-bind",
        "/usr",
        "/usr",
        "--ro-bind",
        "/etc",
        "/etc",
    ]
    for name in ("bin", "sbin", "lib", "lib64"):
        if os.path.islink(f"/{name}"):
            argv += ["--symlink", os.readlink(f"/{name}"), f"/{name}"]
    return [*argv, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "/bin/true"]


def runc_bundle(root: Path) -> Path:
    """An OCI bundle doing what our warm container does: host dirs bound read-only, limits, namespaces."""
    bundle = root / "bundle"
    rootfs = bundle / "rootfs"
    for d in ("usr", "etc", "proc", "dev", "sys", "tmp", "workspace"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    for name in ("bin", "sbin", "lib", "lib64"):
        if os.path.islink(f"/{name}"):
            os.symlink(os.readlink(f"/{name}"), rootfs / name)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    config["root"] = {"path": "rootfs", "readonly": True}
    for target in ("/usr", "/etc"):
        config["mounts"].append(
            {"destination": target, "type": "bind", "source": target, "options": ["rbind", "ro"]}
        )
    config["mounts"].append(
        {"destination": "/workspace", "type": "bind", "source": str(root), "options": ["rbind"]}
    )
    config["linux"]["resources"] = {
        "memory": {"limit": 256 << 20},
        "cpu": {"quota": 100000, "period": 100000},
        "pids": {"limit": 256},
    }
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def runc_samples(n: int, root: Path) -> list[float]:
    bundle = runc_bundle(root)
    samples = []
    for i in range(n + 3):
        start = time.perf_counter()
        subprocess.run(
            [
                "runc",
                "--root",
                str(root / "state"),
                "run",
                "--bundle",
                str(bundle),
                f"bench{os.getpid()}-{i}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if i >= 3:
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def report(rows: list[tuple[str, list[float]]], base: str) -> None:
    reference = statistics.median(dict(rows)[base])
    print(f"  {'':36} {'p50 ms':>9} {'p95 ms':>9} {'p50 vs ' + base:>16}")
    for name, samples in rows:
        p50 = statistics.median(samples)
        ratio = f"{p50 / reference:.2f}x" if name != base else "1.00x"
        print(f"  {name:36} {p50:9.2f} {pct(samples, 0.95):9.2f} {ratio:>16}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=200, help="warm containers (default 200)")
    parser.add_argument("--cold", type=int, default=30, help="whole commands per tool (default 30)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: containers need namespaces, cgroups and overlayfs", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="runner-bench-"))
    try:
        print(
            f"warm: {args.n} containers from one process (limits, namespaces, overlay rootfs, shared netns)"
        )
        warm = [("runner (in-process)", ours_warm(args.n, work / "home"))]
        if shutil.which("bwrap"):
            warm.append(("bwrap (whole command, no cgroup/overlay)", time_command(bwrap_argv(), args.n)))
        if shutil.which("runc"):
            warm.append(("runc run (whole command)", runc_samples(args.n, work / "runc")))
        base = "runc run (whole command)" if shutil.which("runc") else warm[0][0]
        report(warm, base)

        print(f"\ncold: {args.cold} whole commands per tool, timed the same way")
        env = dict(os.environ, RUNNER_HOME=str(work / "home"))
        runner = [
            sys.executable,
            "-m",
            "runner.cli",
            "sandbox",
            "--memory",
            "256M",
            "--cpus",
            "1",
            "--pids",
            "256",
        ]
        cold = [("runner sandbox -- true", time_command([*runner, "--", "/bin/true"], args.cold, env))]
        if shutil.which("bwrap"):
            cold.append(("bwrap ... true", time_command(bwrap_argv(), args.cold)))
        if shutil.which("runc"):
            cold.append(("runc run (whole command)", runc_samples(args.cold, work / "runc2")))
        if docker_available():
            cold.append(
                ("docker run --rm", time_command(["docker", "run", "--rm", "busybox", "true"], args.cold))
            )
        else:
            print("  (docker: no engine answers `docker info`; not measured)")
        report(cold, "runc run (whole command)" if shutil.which("runc") else cold[0][0])
        python = time_command([sys.executable, "-c", "pass"], args.cold)
        print(f"  (for scale: `python3 -c pass` alone takes {statistics.median(python):.1f} ms here)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
