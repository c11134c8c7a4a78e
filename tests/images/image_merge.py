"""Test helpers: an image's layers seen the way the engine will see them, through a real overlay mount."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runner.images.digest import sha256_bytes
from runner.images.ingest import LayerSource, ingest
from runner.images.store import ImageRecord, Store


@contextlib.contextmanager
def overlay_view(layers: list[Path], tmp: Path) -> Iterator[Path]:
    """Mount `layers` (top first) read-only with overlayfs and yield the merged directory."""
    empty = tmp / "empty-bottom"  # overlay wants two lower dirs when there is no upper one
    empty.mkdir(exist_ok=True)
    target = tmp / "merged"
    target.mkdir(exist_ok=True)
    lower = ":".join(str(p) for p in [*layers, empty])
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower}", str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def image_from_tars(store: Store, tars: list[bytes], run_config: dict[str, Any] | None = None) -> ImageRecord:
    """An image in the store made of these uncompressed layer tars, bottom first."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": run_config or {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/w"},
        "rootfs": {"type": "layers", "diff_ids": [sha256_bytes(t) for t in tars]},
    }
    sources = [LayerSource(lambda t=t: contextlib.nullcontext(io.BytesIO(t)), None) for t in tars]  # type: ignore[misc]
    return ingest(store, json.dumps(config).encode(), sources, what="test image")
