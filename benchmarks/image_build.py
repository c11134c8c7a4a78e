#!/usr/bin/env python3
"""Image build cost: `runner image build` beside `buildah bud --layers` (and `docker build`), same run.

One 3-instruction Dockerfile over a small local base (static busybox, made once with buildah and
imported into our store with `runner image import`, so nobody pulls anything):

    FROM <busybox base>
    COPY app.txt /app/app.txt
    RUN cat /app/app.txt > /app/out.txt
    ENV MODE=bench

  cold    an empty build cache, the base already present: ours gets a fresh copy of a RUNNER_HOME
          holding only the base; buildah's built image and its intermediate layers are removed (rmi,
          then rmi --prune); docker's image is removed and its build cache pruned. Resetting is untimed.
  cached  the same build again with every layer in the cache.

Every figure is a whole process timed from the outside (the way a user or CI job meets it), p50 of N.
Our process runs with bytecode caches (PYTHONDONTWRITEBYTECODE is unset for it and a warm-up run
writes them), as a user's installed runner would. Docker is timed only when an engine answers.

Usage: python3 benchmarks/image_build.py [-n 15]   (as root; needs buildah and busybox-static)
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
from collections.abc import Callable
from pathlib import Path

DOCKERFILE = """\
FROM {base}
COPY app.txt /app/app.txt
RUN cat /app/app.txt > /app/out.txt
ENV MODE=bench
"""


def sh(argv: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()[-800:]}")
    return result.stdout


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()[-800:]}")
    return elapsed


def measure(n: int, reset: Callable[[], None] | None, argv: list[str], env: dict[str, str] | None) -> float:
    """p50 in ms of `argv` over n runs; `reset()` (untimed) before each when measuring cold builds."""
    samples = []
    for _ in range(n):
        if reset is not None:
            reset()
        samples.append(timed(argv, env))
    return statistics.median(samples)


def busybox_rootfs(root: Path) -> None:
    binary = Path("/bin/busybox")
    if not binary.is_file():
        sys.exit("needs /bin/busybox: apt-get install -y busybox-static")
    (root / "bin").mkdir(parents=True)
    shutil.copy2(binary, root / "bin" / "busybox")
    for applet in sh([str(binary), "--list"]).split():
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    (root / "tmp").mkdir(mode=0o1777)


def our_command() -> list[str]:
    script = Path(sys.executable).parent / "runner"  # the console script itself, not a version-manager shim
    return [str(script)] if script.is_file() else [sys.executable, "-m", "runner.cli"]


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            timeout=5,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="runs per figure (default 15)")
    parser.add_argument(
        "--storage-driver", default="overlay", help="buildah's storage driver (default overlay)"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: builds run containers")
    if shutil.which("buildah") is None:
        sys.exit("needs buildah: apt-get install -y buildah")

    work = Path(tempfile.mkdtemp(prefix="image-bench-"))
    try:
        return run_all(work, args.n, args.storage_driver)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_all(work: Path, n: int, driver: str) -> int:
    buildah = [
        "buildah",
        "--root",
        str(work / "buildah-root"),
        "--runroot",
        str(work / "buildah-run"),
        "--storage-driver",
        driver,
    ]
    quiet = dict(os.environ, BUILDAH_ISOLATION="chroot")

    # the base, once: static busybox as an OCI archive, known to buildah by name and imported into ours
    busybox_rootfs(work / "bbroot")
    container = sh([*buildah, "from", "scratch"], env=quiet).strip()
    sh([*buildah, "copy", container, str(work / "bbroot"), "/"], env=quiet)
    sh([*buildah, "config", "--env", "PATH=/bin", "--cmd", "sh", container], env=quiet)
    sh([*buildah, "commit", "--format", "oci", container, "bench-busybox:1"], env=quiet)
    sh([*buildah, "rm", container], env=quiet)
    archive = work / "busybox.oci.tar"
    sh([*buildah, "push", "bench-busybox:1", f"oci-archive:{archive}"], env=quiet)

    ours_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    template_home = work / "home-template"
    ours_env["RUNNER_HOME"] = str(template_home)
    runner = our_command()
    sh([*runner, "image", "import", str(archive), "-t", "bench/busybox:1"], env=ours_env)

    contexts = {}
    for tool, base in (("ours", "bench/busybox:1"), ("buildah", "localhost/bench-busybox:1")):
        ctx = work / f"ctx-{tool}"
        ctx.mkdir()
        (ctx / "app.txt").write_text("benchmark payload\n")
        (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base))
        contexts[tool] = ctx

    # ---- ours ----
    home = work / "home"
    ours_env["RUNNER_HOME"] = str(home)
    ours_build = [*runner, "image", "build", "-t", "bench/out:1", str(contexts["ours"])]

    def reset_ours() -> None:
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(template_home, home, symlinks=True)

    reset_ours()
    sh(ours_build, env=ours_env)  # writes the bytecode caches; checks it builds
    check = sh(ours_build, env=ours_env)
    if "building" in check or check.count("CACHED") < 2:
        sys.exit(f"our cached build did not hit the cache:\n{check}")
    ours_cold = measure(n, reset_ours, ours_build, ours_env)
    sh(ours_build, env=ours_env)
    ours_cached = measure(n, None, ours_build, ours_env)

    # ---- buildah ----
    buildah_build = [*buildah, "bud", "--layers", "--isolation", "chroot", "-q", "-t", "bench-out:1"]
    buildah_build.append(str(contexts["buildah"]))

    def reset_buildah() -> None:
        subprocess.run([*buildah, "rmi", "-f", "bench-out:1"], capture_output=True, check=False)
        subprocess.run([*buildah, "rmi", "--prune"], capture_output=True, check=False)

    reset_buildah()
    sh(buildah_build, env=quiet)
    check = sh([arg for arg in buildah_build if arg != "-q"], env=quiet)
    if check.count("Using cache") < 2:
        sys.exit(f"buildah's cached build did not hit its cache:\n{check}")
    buildah_cold = measure(n, reset_buildah, buildah_build, quiet)
    sh(buildah_build, env=quiet)
    buildah_cached = measure(n, None, buildah_build, quiet)

    rows = [
        ("runner image build", ours_cold, ours_cached),
        (f"buildah bud --layers ({driver})", buildah_cold, buildah_cached),
    ]

    # ---- docker, when an engine answers ----
    if docker_answers():
        docker_archive = work / "busybox.docker.tar"
        sh(["skopeo", "copy", f"oci-archive:{archive}", f"docker-archive:{docker_archive}:bench-busybox:1"])
        sh(["docker", "load", "-i", str(docker_archive)])
        ctx = work / "ctx-docker"
        ctx.mkdir()
        (ctx / "app.txt").write_text("benchmark payload\n")
        (ctx / "Dockerfile").write_text(DOCKERFILE.format(base="bench-busybox:1"))
        docker_build = ["docker", "build", "-q", "-t", "bench-out:1", str(ctx)]

        def reset_docker() -> None:
            subprocess.run(["docker", "rmi", "-f", "bench-out:1"], capture_output=True, check=False)
            subprocess.run(["docker", "builder", "prune", "-af"], capture_output=True, check=False)

        reset_docker()
        sh(docker_build)
        docker_cold = measure(n, reset_docker, docker_build, None)
        sh(docker_build)
        docker_cached = measure(n, None, docker_build, None)
        rows.append(("docker build", docker_cold, docker_cached))
        reset_docker()
        subprocess.run(["docker", "rmi", "-f", "bench-busybox:1"], capture_output=True, check=False)
    else:
        print("docker: no engine answers (docker version failed); not measured")

    floor = measure(n, None, [sys.executable, "-c", "pass"], ours_env)
    print(f"\n3-instruction Dockerfile over static busybox, whole process, p50 of {n} runs (ms)")
    print(f"(for scale: this Python starting and doing nothing takes {floor:.1f} ms here)")
    print(f"{'tool':34} {'cold':>9} {'cached':>9}")
    for name, cold, cached in rows:
        print(f"{name:34} {cold:9.1f} {cached:9.1f}")
    print()
    for name, cold, cached in rows[1:]:
        ratios = f"cold {ours_cold / cold:.2f}x, cached {ours_cached / cached:.2f}x"
        print(f"ours / {name}: {ratios}  (below 1 = ours faster)")
    subprocess.run([*buildah, "rmi", "-a", "-f"], capture_output=True, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
