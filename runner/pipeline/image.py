"""The seam between a job's `image:` and the root filesystem its containers run over.

`host` is served by the sandbox directly. Any other image (a registry reference, a local name, a
`build:` list or a `dockerfile:`) comes from `runner.images.jobimage.rootfs_for`, which pulls or builds
it (the job's workspace is the build context; build output goes to `log`) and returns a Rootfs whose
`env` carries the image's own environment.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import cast

from runner.config.spec import ImageSpec
from runner.sandbox import Rootfs
from runner.settings import Paths

UNSUPPORTED = "images other than host arrive with the images issue"


class ImageUnavailable(Exception):
    """The image cannot be made into a root filesystem; the message is one line for the user."""


def describe(image: ImageSpec) -> str:
    """How a job's image reads in its log and phases: `host`, `python:3.12`, `built from host`..."""
    if image.dockerfile:
        return f"dockerfile {image.dockerfile}"
    if image.build:
        return f"built from {image.ref}"
    return image.ref


def resolve_rootfs(
    image: ImageSpec,
    paths: Paths,
    *,
    workspace: Path | None = None,
    log: Callable[[str], None] | None = None,
    seccomp: str = "default",
) -> Rootfs:
    """A fresh root filesystem of `image`, owned by the caller (destroy it when done)."""
    if image.is_host:
        return Rootfs.create(paths)
    try:
        build = importlib.import_module("runner.images.jobimage")
    except ImportError:
        raise ImageUnavailable(UNSUPPORTED) from None
    provider = cast(Callable[..., Rootfs], build.rootfs_for)
    return provider(image, paths, workspace=workspace, log=log or (lambda line: None), seccomp=seccomp)
