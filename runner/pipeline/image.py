"""The seam between a job's `image:` and the root filesystem its containers run over.

`host` is served by the sandbox directly. Any other image comes from `runner.images`, which is
looked up at run time: when it provides `rootfs_for(image: ImageSpec, paths: Paths) -> Rootfs`
(pull or build as needed, then `Rootfs.create(paths, layers=...)`), jobs use it; until then a
non-host image is a clear `error` for the job.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from runner.config.spec import ImageSpec
from runner.sandbox import Rootfs
from runner.settings import Paths

UNSUPPORTED = "images other than host arrive with the images issue"


class ImageUnavailable(Exception):
    """The image cannot be made into a root filesystem; the message is one line for the user."""


def resolve_rootfs(image: ImageSpec, paths: Paths) -> Rootfs:
    """A fresh root filesystem of `image`, owned by the caller (destroy it when done)."""
    if image.is_host:
        return Rootfs.create(paths)
    try:
        images = importlib.import_module("runner.images")
    except ImportError:
        raise ImageUnavailable(UNSUPPORTED) from None
    provider = getattr(images, "rootfs_for", None)
    if provider is None:
        raise ImageUnavailable(UNSUPPORTED)
    return cast(Callable[[ImageSpec, Paths], Rootfs], provider)(image, paths)
