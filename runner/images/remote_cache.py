"""A layer cache shared by workers through a registry (`RUNNER_CACHE_REGISTRY=host[:port]/repo`).

Each layer a builder makes is pushed as a one-layer image tagged `k-<cache key>`; a builder missing a
key asks the registry for that tag first and, when it is there, pulls and applies the layer instead of
building it. So no worker builds a layer another worker has built (the idea of BuildKit's registry
cache). Failures to reach the cache never fail a build: they are reported and the step is built.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from runner.images.errors import ImageError
from runner.images.manifest import OCI_CONFIG, OCI_MANIFEST, Descriptor, load, parse_manifest
from runner.images.store import LayerRecord, Store


def target() -> str | None:
    value = os.environ.get("RUNNER_CACHE_REGISTRY", "").strip().rstrip("/")
    return value or None


def _split(where: str) -> tuple[str, str]:
    from runner.images.reference import parse_ref

    ref = parse_ref(f"{where}:cache")
    return ref.registry, ref.repository


def fetch(store: Store, layer_id: str, key: str, where: str) -> bool:
    """Pull the layer cached under `key` into the store as `layer_id`; False when the registry lacks it."""
    from runner.images.registry import RegistryClient
    from runner.images.tarlayer import apply_layer

    registry, repository = _split(where)
    with RegistryClient(registry) as client:
        try:
            data, _type, _ = client.get_manifest(repository, f"k-{key}")
        except ImageError as exc:
            if "not found" in str(exc):
                return False
            raise
        manifest = parse_manifest(load(data, "cache manifest"), "cache manifest")
        if len(manifest.layers) != 1:
            raise ImageError(f"{where}:k-{key[:12]}: a cache entry holds exactly one layer")
        desc = manifest.layers[0]
        config = load(client.get_blob_bytes(repository, manifest.config), "cache config")
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or [None]

        def make(dest: Path) -> LayerRecord:
            with client.blob(repository, desc, store.tmp) as blob:
                applied = apply_layer(
                    blob, dest, store.tmp, digest=desc.digest, size=desc.size, diff_id=diff_ids[0]
                )
            record = LayerRecord(id=layer_id, name="", diff_id=applied.diff_id)
            record.note_blob(
                desc.digest, size=desc.size, media_type=desc.media_type, diff_id=applied.diff_id, repo=None
            )
            return record

        store.ensure_layer(layer_id, make)
        return True


def publish(store: Store, layer_id: str, key: str, where: str) -> None:
    """Push the stored layer `layer_id` as the cache entry `k-<key>`."""
    from runner.images.packimage import pack_stored_layer
    from runner.images.registry import RegistryClient

    registry, repository = _split(where)
    with RegistryClient(registry) as client, tempfile.TemporaryDirectory(dir=store.tmp) as work:
        blob_path = Path(work) / "layer"
        packed = pack_stored_layer(store, layer_id, blob_path)
        layer_desc = Descriptor(packed.media_type, packed.digest, packed.size)
        if not client.has_blob(repository, packed.digest):
            client.upload_blob(repository, blob_path, layer_desc)
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [packed.diff_id]},
            },
            sort_keys=True,
        ).encode()
        from runner.images.digest import sha256_bytes

        config_path = Path(work) / "config"
        config_path.write_bytes(config)
        config_desc = Descriptor(OCI_CONFIG, sha256_bytes(config), len(config))
        if not client.has_blob(repository, config_desc.digest):
            client.upload_blob(repository, config_path, config_desc)
        from runner.images.manifest import manifest_json

        client.put_manifest(repository, f"k-{key}", manifest_json(config_desc, [layer_desc]), OCI_MANIFEST)
