"""The engine's seam to images: a ci.yml `image:` (runner.config.spec.ImageSpec) made into a Rootfs.

`host` needs nothing; a registry reference or local name is pulled if missing; a `build:` list or a
`dockerfile:` goes through the builder with the job's workspace as context; `from: <job>` builds that
job's image first. The Rootfs holds a lease on its image, so rm and prune leave the layers alone.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from pathlib import Path
from typing import Any

from runner.images import dockerfile as df
from runner.images.build import Builder, BuiltImage, Printer, State
from runner.images.config import BASE_LABEL
from runner.images.errors import ImageError
from runner.images.reference import is_host
from runner.images.store import Store
from runner.settings import Paths


def instructions_from_spec(build: Any) -> list[df.Instruction]:
    """The ci.yml `build:` entries (runner.config.spec.BuildInstruction) as Dockerfile instructions."""
    out = []
    for number, entry in enumerate(build, 1):
        if entry.kind == "run":
            out.append(df.Instruction("RUN", entry.args[0], number))
        elif entry.kind == "copy":
            src, dest = entry.args[0], entry.args[1]
            out.append(df.Instruction("COPY", json.dumps([src, dest]), number))
        elif entry.kind == "env":
            # quoted for the ENV parser (a value may hold ' " \ or spaces); $VAR still expands as in ENV
            out.append(df.Instruction("ENV", " ".join(shlex.quote(a) for a in entry.args), number))
        elif entry.kind == "workdir":
            out.append(df.Instruction("WORKDIR", entry.args[0], number))
    return out


def build_image(
    image: Any, paths: Paths, *, workspace: Path | None, log: Printer, seccomp: Any = "default"
) -> BuiltImage | None:
    """Build or fetch a ci.yml image (runner.config.spec.ImageSpec); None for the plain `host` image."""
    context = workspace or Path("/nonexistent")
    builder = Builder(paths, out=log, seccomp=seccomp)
    base_ref = image.ref
    if image.base is not None:  # `from:` another job: its image first (every step CACHED after that job)
        parent = build_image(image.base, paths, workspace=workspace, log=log, seccomp=seccomp)
        if not image.build and not image.dockerfile:
            return parent
        base_ref = "host" if parent is None else parent.image_id
    if image.dockerfile:
        if workspace is None:
            raise ImageError("a dockerfile image needs the job's workspace as its context")
        root = workspace.resolve()
        ctx_dir = (root / (image.context or ".")).resolve()
        file = (root / image.dockerfile).resolve()
        for what, path in (("context", ctx_dir), ("dockerfile", file)):
            if path != root and root not in path.parents:
                raise ImageError(f"{what} {path} is outside the workspace")
        if not file.is_file():
            raise ImageError(f"dockerfile {image.dockerfile} does not exist in the repository")
        if not ctx_dir.is_dir():
            raise ImageError(f"context {image.context} is not a directory of the repository")
        return builder.build_dockerfile(file, ctx_dir)
    if image.build:
        return builder.build_steps(base_ref, instructions_from_spec(image.build), context)
    if is_host(base_ref):
        return None
    from runner.images import ensure_image

    record = ensure_image(builder.store, base_ref)
    config = dict(record.config.get("config") or {})
    base = (config.get("Labels") or {}).get(BASE_LABEL)
    return BuiltImage(record.id, base, builder._dirs(State(base, list(record.layers), config, "")), config)


def rootfs_for(
    image: Any, paths: Paths, *, workspace: Path | None = None, log: Printer = print, seccomp: Any = "default"
) -> Any:
    """The engine's seam: a fresh Rootfs of a ci.yml image, built or pulled as needed; its RUN steps
    run under the job's seccomp setting."""
    from runner.sandbox import Rootfs

    built = build_image(image, paths, workspace=workspace, log=log, seccomp=seccomp)
    if built is None:
        return Rootfs.create(paths)
    lease = contextlib.ExitStack()
    lease.enter_context(Store(paths).lease(built.image_id))  # rm and prune leave its layers alone
    try:
        rootfs = Rootfs.create(paths, layers=built.layer_dirs, base=built.base)
    except BaseException:
        lease.close()
        raise
    rootfs.on_destroy.append(lease.close)
    env = {}
    for entry in built.config.get("Env") or []:
        key, _, value = str(entry).partition("=")
        env[key] = value
    rootfs.env = env
    rootfs.image_config = dict(built.config)  # USER, WORKDIR, ENTRYPOINT: for `docker run`-like callers
    return rootfs


def run_defaults(rootfs: Any, paths: Paths) -> tuple[int, int, str, list[str]]:
    """(uid, gid, working dir, entrypoint) an image asks its commands to run with, as `docker run` does."""
    from runner.images.imageview import ImageView, user_ids

    config = getattr(rootfs, "image_config", {}) or {}
    uid = gid = 0
    if config.get("User"):
        uid, gid = user_ids(str(config["User"]), ImageView(rootfs.layers, rootfs.base, paths))
    entrypoint = [str(x) for x in config.get("Entrypoint") or []]
    return uid, gid, str(config.get("WorkingDir") or "/"), entrypoint
