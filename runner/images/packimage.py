"""The blobs of a stored image for export or push: layers packed to tars, the config and manifest to match."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner.images.digest import sha256_bytes
from runner.images.errors import ImageError
from runner.images.manifest import OCI_CONFIG, OCI_MANIFEST, Descriptor, manifest_json
from runner.images.store import LayerRecord, Store
from runner.images.tarpack import PackedLayer, pack_layer


def cached_packed(store: Store, layer_id: str) -> PackedLayer | None:
    """What packing this layer gave last time (packing is deterministic), without packing it again."""
    record = store.layer(layer_id)
    if record is None:
        raise ImageError(f"layer {layer_id} is missing from the store")
    return PackedLayer(**record.packed) if record.packed else None


def pack_stored_layer(store: Store, layer_id: str, dest: Path) -> PackedLayer:
    """Pack a stored layer as a gzip blob at `dest` and remember its digests in the layer's record."""
    if store.layer(layer_id) is None:
        raise ImageError(f"layer {layer_id} is missing from the store")
    packed = pack_layer(store.layer_path(layer_id), dest)

    def remember(record: LayerRecord) -> None:
        record.packed = {
            "diff_id": packed.diff_id,
            "digest": packed.digest,
            "size": packed.size,
            "media_type": packed.media_type,
        }
        if record.diff_id is None:
            record.diff_id = packed.diff_id

    store.update_layer(layer_id, remember)
    return packed


def config_for(config_bytes: bytes, layer_diff_ids: list[str]) -> bytes:
    """The config bytes as they are when the diff_ids still match, else rewritten with the new ones."""
    config: dict[str, Any] = json.loads(config_bytes)
    rootfs = config.get("rootfs")
    if isinstance(rootfs, dict) and rootfs.get("diff_ids") == layer_diff_ids:
        return config_bytes
    config["rootfs"] = {"type": "layers", "diff_ids": layer_diff_ids}
    return json.dumps(config, separators=(",", ":"), sort_keys=True).encode()


def make_manifest(
    config_bytes: bytes,
    layers: list[Descriptor],
    config_type: str = OCI_CONFIG,
    manifest_type: str = OCI_MANIFEST,
) -> tuple[bytes, Descriptor]:
    """The manifest of this config and these layer blobs (OCI unless told), and the config's descriptor."""
    config_desc = Descriptor(config_type, sha256_bytes(config_bytes), len(config_bytes))
    return manifest_json(config_desc, layers, manifest_type), config_desc


def layer_descriptor(packed: PackedLayer) -> Descriptor:
    return Descriptor(packed.media_type, packed.digest, packed.size)
