"""Bringing an image into the store from its blobs: layers applied and verified by chain id, then the record.

Shared by the registry client and the archive importer, which differ only in where blobs come from.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from runner.images.digest import chain_ids, check, sha256_bytes
from runner.images.errors import ImageError
from runner.images.manifest import Descriptor, Manifest, diff_ids, load
from runner.images.store import ImageRecord, LayerRecord, Store
from runner.images.tarlayer import apply_layer

BlobOpener = Callable[[], contextlib.AbstractContextManager[BinaryIO]]


@dataclass(frozen=True)
class LayerSource:
    """Where one layer's blob comes from; `descriptor` is None when nothing but the config vouches for it."""

    open: BlobOpener
    descriptor: Descriptor | None
    repo: str | None = None  # `registry/repository` it was pulled from, for cross-repo mounts on push


def check_config(config_bytes: bytes, descriptor: Descriptor | None, what: str) -> dict[str, Any]:
    """The config document, after checking it is the blob the manifest names."""
    if descriptor is not None:
        check(
            f"{what}: config",
            want_digest=descriptor.digest,
            want_size=descriptor.size,
            got_digest=sha256_bytes(config_bytes),
            got_size=len(config_bytes),
        )
    return load(config_bytes, f"{what}: config")


def ingest(
    store: Store,
    config_bytes: bytes,
    layers: list[LayerSource],
    *,
    what: str,
    manifest: Manifest | None = None,
    manifest_digest: str | None = None,
    repo_digests: list[str] | None = None,
    workers: int = 1,
) -> ImageRecord:
    """Apply every missing layer (in parallel with `workers` > 1) and record the image.

    Each layer is checked against its descriptor (size, digest) and the config's diff_id, and lands in
    the store under its chain id, so a layer shared with an image already here costs nothing.
    """
    config = check_config(config_bytes, manifest.config if manifest else None, what)
    ids = diff_ids(config, what)
    if len(ids) != len(layers):
        raise ImageError(f"{what}: the config lists {len(ids)} layers but the manifest has {len(layers)}")
    chains = chain_ids(ids)

    def one(index: int) -> LayerRecord:
        source = layers[index]
        desc = source.descriptor
        label = f"{what}: layer {index + 1}/{len(layers)} ({desc.digest if desc else ids[index]})"

        def make(dest: Path) -> LayerRecord:
            with source.open() as blob:
                applied = apply_layer(
                    blob,
                    dest,
                    store.tmp,
                    digest=desc.digest if desc else None,
                    size=desc.size if desc else None,
                    diff_id=ids[index],
                    what=label,
                )
            record = LayerRecord(id=chains[index], name="", diff_id=applied.diff_id, created=time.time())
            if desc is not None:
                record.note_blob(
                    desc.digest,
                    size=desc.size,
                    media_type=desc.media_type,
                    diff_id=ids[index],
                    repo=source.repo,
                )
            return record

        parent = chains[index - 1] if index else None
        record = store.ensure_layer(chains[index], make, parent=parent)
        if desc is not None and (desc.digest not in record.blobs or source.repo):
            note = functools.partial(
                LayerRecord.note_blob,
                digest=desc.digest,
                size=desc.size,
                media_type=desc.media_type,
                diff_id=ids[index],
                repo=source.repo,
            )
            store.update_layer(record.id, note)
        return record

    with store.adding():  # rm and prune wait until the image that uses these layers is recorded
        if workers > 1 and len(layers) > 1:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="layer") as pool:
                futures = [pool.submit(one, index) for index in range(len(layers))]
                try:
                    for future in as_completed(futures):
                        future.result()
                except BaseException:
                    for future in futures:  # the first failure ends the pull: start nothing more
                        future.cancel()
                    raise
        else:
            for index in range(len(layers)):
                one(index)
        return store.put_image(
            config_bytes, chains, manifest_digest=manifest_digest, repo_digests=repo_digests or []
        )
