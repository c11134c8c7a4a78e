"""Images: references, the local layer store, registry pull/push and archive import/export.

The engine needs two things from here: `image_layers(store, ref)`, the applied layer directories of an
image top first (the overlay `lowerdir=` order), and `image_config(store, ref)`. Network and archive
code (httpx, tarfile) loads only when pull, push, import or export is called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runner.images.config import ImageConfig
from runner.images.errors import ImageError
from runner.images.reference import HOST, ImageRef, is_host, parse_ref
from runner.images.store import ImageRecord, LayerRecord, Store

if TYPE_CHECKING:
    from runner.settings import Paths

__all__ = [
    "HOST",
    "ImageConfig",
    "ImageError",
    "ImageRecord",
    "ImageRef",
    "LayerRecord",
    "Store",
    "ensure_image",
    "export_archive",
    "image_config",
    "image_layers",
    "import_archive",
    "is_host",
    "open_store",
    "parse_ref",
    "pull",
    "push",
]


def open_store(paths: Paths | None = None) -> Store:
    """The store of `paths` (default: RUNNER_HOME)."""
    from runner.settings import Paths

    return Store(paths or Paths.default())


def pull(ref: str, store: Store) -> ImageRecord:
    """Pull `ref` from its registry into the store and tag it."""
    from runner.images.transfer import pull as _pull

    return _pull(ref, store)


def push(ref: str, store: Store, *, source: str | None = None) -> str:
    """Push the stored image `source` (default `ref`) to `ref`; returns the manifest digest."""
    from runner.images.transfer import push as _push

    return _push(ref, store, source=source)


def import_archive(store: Store, path: Path, tag: str | None = None) -> list[ImageRecord]:
    """Import a `docker save` tarball or an OCI layout (dir or tar); `tag` names a single image."""
    from runner.images.oci import import_archive as _import

    return [record for record, _ in _import(store, path, tag)]


def export_archive(store: Store, ref: str, out: Path) -> ImageRecord:
    """Write the stored image `ref` as an OCI layout tar."""
    from runner.images.oci import export_archive as _export

    return _export(store, ref, out)


def ensure_image(store: Store, ref: str) -> ImageRecord:
    """The stored image `ref`, pulled first if the store does not have it."""
    try:
        return store.resolve(ref)
    except ImageError:
        parsed = parse_ref(ref)  # a bad reference fails here with its own message
        return pull(str(parsed), store)


def image_layers(store: Store, ref: str) -> list[Path]:
    """The layer directories of the stored image `ref`, top first, as overlay `lowerdir=` wants them."""
    _, paths = store.use(ref)
    return paths


def image_config(store: Store, ref: str) -> ImageConfig:
    """Environment, working dir, user, entrypoint and command of the stored image `ref`."""
    return ImageConfig.from_json(store.resolve(ref).config)
