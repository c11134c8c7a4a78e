"""`runner image build|ls|pull|push|import|export|rm|prune`: the CLI glue over runner.images."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(args: argparse.Namespace) -> int:
    from runner.images import cli_impl
    from runner.images.errors import ImageError
    from runner.images.store import Store
    from runner.settings import Paths

    try:
        store = Store(Paths.default())
    except OSError as exc:
        print(f"runner image: cannot open the image store: {exc}", file=sys.stderr)
        return 1
    command = args.image_command
    if command == "build":
        return _build(args, store)
    if command == "ls":
        return cli_impl.ls(store)
    if command == "rm":
        return cli_impl.rm(store, args.ref)
    if command == "prune":
        return cli_impl.prune(store, args.keep)
    if command == "pull":
        return cli_impl.pull(store, args.ref)
    if command == "push":
        return cli_impl.push(store, args.ref)
    if command == "import":
        return cli_impl.import_(store, args.file, args.tag)
    if command == "export":
        return cli_impl.export(store, args.ref, args.output)
    raise ImageError(f"unknown image command {command}")  # argparse prevents this


def _build(args: argparse.Namespace, store: object) -> int:
    from runner.images.build import Builder
    from runner.images.errors import ImageError
    from runner.sandbox import SandboxError
    from runner.settings import Paths

    context = Path(args.context)
    dockerfile = Path(args.file) if args.file else context / "Dockerfile"
    if not context.is_dir():
        print(f"runner image build: context {context} is not a directory", file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print(
            "runner image build: building needs root for now (RUN steps run in containers)", file=sys.stderr
        )
        return 1

    def out(line: str) -> None:
        print(line, flush=True)

    builder = Builder(Paths.default(), store=store, no_cache=args.no_cache, out=out)  # type: ignore[arg-type]
    try:
        builder.build_dockerfile(dockerfile, context, tag=args.tag)
    except (ImageError, SandboxError) as exc:
        print(f"runner image build: {exc}", file=sys.stderr)
        return 1
    return 0
