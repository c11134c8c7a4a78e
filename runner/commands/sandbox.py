"""`runner sandbox`: one command in a throwaway container, the `docker run --rm` of this project."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.sandbox import ContainerSpec

EXIT_RUNNER_ERROR = 125


def _fail(message: str) -> int:
    print(f"runner sandbox: {message}", file=sys.stderr)
    return EXIT_RUNNER_ERROR


def _parse_env(items: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise ValueError(f"invalid --env {item!r}: use KEY=VALUE")
        env[key] = value if sep else os.environ.get(key, "")
    return env


def main(args: argparse.Namespace) -> int:
    from runner import units
    from runner.config.units import parse_bandwidth, parse_byte_rate, parse_disk, parse_duration, parse_size
    from runner.sandbox import ContainerSpec, Limits, SandboxError

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        return _fail("no command given: runner sandbox [options] -- CMD [ARG]...")
    try:
        limits = Limits(
            memory=parse_size(args.memory) if args.memory else None,
            cpus=units.parse_cpus(args.cpus) if args.cpus else None,
            pids=int(args.pids) if args.pids else None,
            io_read_bps=parse_byte_rate(args.io_read_bps) if args.io_read_bps else None,
            io_write_bps=parse_byte_rate(args.io_write_bps) if args.io_write_bps else None,
        )
        disk = parse_disk(args.disk) if args.disk else None
        bandwidth = parse_bandwidth(args.bandwidth) if args.bandwidth else None
        if limits.pids is not None and limits.pids < 1:
            raise ValueError(f"invalid --pids {args.pids}: must be at least 1")
        timeout = parse_duration(args.timeout) if args.timeout else None
        env = {"TERM": os.environ.get("TERM", "xterm")} if args.tty else {}
        env.update(_parse_env(args.env))
    except ValueError as exc:
        if "invalid literal for int()" in str(exc):
            return _fail(f"invalid --pids {args.pids!r}: use a whole number")
        return _fail(str(exc))
    if args.network not in ("none", "bridge", "host"):
        return _fail(f"invalid --network {args.network!r}: use none, bridge or host")
    if bandwidth is not None and args.network != "bridge":
        return _fail(f"--bandwidth shapes a bridge network: add --network bridge (not {args.network})")
    workspace = None
    if args.workspace:
        workspace = Path(args.workspace).resolve()
        if not workspace.is_dir():
            return _fail(f"workspace {args.workspace} does not exist or is not a directory")
    if os.geteuid() != 0:
        return _fail("containers need root (the runner itself maps container root to an unprivileged uid)")
    spec = ContainerSpec(
        argv=command,
        env=env,
        cwd="/workspace" if workspace else "/",
        workspace=workspace,
        limits=limits,
        timeout=timeout,
        pty=args.tty,
        seccomp=args.seccomp,
    )
    userns_flag = getattr(args, "userns", None)
    if userns_flag is not None:  # --userns insists (an error where the kernel refuses); --no-userns: none
        from runner.sandbox import userns

        spec.userns = userns.default_idmap() if userns_flag else None
    try:
        return _run(spec, args.image, args.network, disk, bandwidth)
    except SandboxError as exc:
        return _fail(str(exc))


def _run(
    spec: ContainerSpec, image: str, network_mode: str, disk: int | None = None, bandwidth: int | None = None
) -> int:
    from runner.sandbox import NetworkNamespace, Rootfs, SandboxError, spawn, userns
    from runner.settings import Paths

    paths = Paths.default()
    out = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}

    def on_output(stream: str, line: bytes) -> None:
        target = out[stream]
        target.write(line + b"\n")
        target.flush()

    network = NetworkNamespace.create(network_mode, bandwidth) if network_mode != "none" else None
    if image == "host":
        rootfs = Rootfs.create(paths)
    else:
        from runner.config.spec import ImageSpec
        from runner.images.errors import ImageError
        from runner.images.jobimage import rootfs_for

        try:
            rootfs = rootfs_for(ImageSpec(ref=image), paths, log=lambda line: print(line, file=sys.stderr))
        except ImageError as exc:
            if network is not None:
                network.close()
            raise SandboxError(f"image {image}: {exc}") from None
        from runner.images.jobimage import run_defaults

        try:
            uid, gid, workdir, entrypoint = run_defaults(rootfs, paths)
        except ImageError as exc:
            rootfs.destroy()
            raise SandboxError(f"image {image}: {exc}") from None
        spec.env = {**rootfs.env, **spec.env}
        spec.uid, spec.gid = uid, gid
        spec.argv = [*entrypoint, *spec.argv]
        if spec.workspace is None:
            spec.cwd = workdir
    try:
        if disk is not None:
            rootfs.limit_disk(disk)
        container = spawn(spec, rootfs=rootfs, network=network, on_output=on_output, paths=paths)
        if rootfs.userns_note and spec.userns == "auto" and userns.setting():  # the kernel refused
            print(f"runner sandbox: {rootfs.userns_note}", file=sys.stderr)

        def forward(signum: int, frame: object) -> None:
            container.kill()

        previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            result = container.wait()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    finally:
        rootfs.destroy()
        if network is not None:
            network.close()
    if result.reason == "timeout":
        print("runner sandbox: timeout", file=sys.stderr)
        return 124
    if result.reason == "oom":
        print("runner sandbox: oom", file=sys.stderr)
        return 137
    return result.exit_code
