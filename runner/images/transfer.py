"""Pull and push: moving an image between a registry and the local store.

Pull follows an index to the host platform, fetches the config, then every layer not already in the
store in parallel (download, verify, apply). Push sends only what the registry lacks: it HEADs each
blob, mounts it from another repository of the same registry when the store knows one that has it,
and uploads the rest, before the manifest goes up.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from runner.images.errors import ImageError
from runner.images.ingest import LayerSource, ingest
from runner.images.manifest import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    OCI_CONFIG,
    OCI_MANIFEST,
    Descriptor,
    diff_ids,
    kind,
    load,
    parse_index,
    parse_manifest,
    pick_platform,
)
from runner.images.packimage import (
    cached_packed,
    config_for,
    layer_descriptor,
    make_manifest,
    pack_stored_layer,
)
from runner.images.reference import parse_ref
from runner.images.registry import RegistryClient
from runner.images.store import ImageRecord, LayerRecord, Store
from runner.images.tarpack import PackedLayer

PULL_WORKERS = 4


def pull(
    text: str, store: Store, *, workers: int = PULL_WORKERS, client: RegistryClient | None = None
) -> ImageRecord:
    """Pull `text` into the store and tag it; returns the image (its `id` is the image id)."""
    ref = parse_ref(text)
    own = client is None
    client = client or RegistryClient(ref.registry)
    try:
        what = ref.familiar()
        data, content_type, digest = client.get_manifest(ref.repository, ref.reference)
        doc = load(data, what)
        known_as = [f"{ref.name}@{digest}"]  # an index digest names the image too
        if kind(doc, content_type) in INDEX_TYPES:
            entry = pick_platform(parse_index(doc, what), what)
            data, content_type, digest = client.get_manifest(ref.repository, entry.digest)
            doc = load(data, what)
            known_as.append(f"{ref.name}@{digest}")
        manifest = parse_manifest(doc, what)
        config_bytes = client.get_blob_bytes(ref.repository, manifest.config)
        repo = ref.name

        def opener(desc: Descriptor) -> LayerSource:
            return LayerSource(lambda: client.blob(ref.repository, desc, store.tmp), desc, repo)

        with store.adding():  # prune waits until the image is tagged, so it never takes its layers
            record = ingest(
                store,
                config_bytes,
                [opener(desc) for desc in manifest.layers],
                what=what,
                manifest=manifest,
                manifest_digest=digest,
                repo_digests=known_as,
                workers=workers,
            )
            if ref.tag is not None:
                store.tag(ref, record.id)
        return record
    finally:
        if own:
            client.close()


def push(text: str, store: Store, *, source: str | None = None, client: RegistryClient | None = None) -> str:
    """Push the image `source` (default: `text` itself) to the reference `text`; returns its digest."""
    ref = parse_ref(text)
    if ref.tag is None:
        raise ImageError(f"cannot push to {text}: name a tag to push to, not only a digest")
    record = store.resolve(source or text)
    own = client is None
    client = client or RegistryClient(ref.registry)
    try:
        layers = [store.layer(lid) for lid in record.layers]
        if any(layer is None for layer in layers):
            raise ImageError(
                f"{text}: a layer of the image is missing from the store: pull or build it again"
            )
        present = [layer for layer in layers if layer is not None]
        original = store.config_bytes(record.id)
        want = diff_ids(load(original, text), text)
        planned = _reuse_original(client, ref.registry, ref.repository, present, want)
        if planned is not None:
            config_bytes = original
            docker = any(d.media_type.startswith("application/vnd.docker.") for d in planned)
            config_type, manifest_type = (
                (DOCKER_CONFIG, DOCKER_MANIFEST) if docker else (OCI_CONFIG, OCI_MANIFEST)
            )
            layer_descs = planned
        else:
            packed = [_push_packed(client, store, ref.repository, layer) for layer in present]
            config_bytes = config_for(original, [p.diff_id for p in packed])
            layer_descs = [layer_descriptor(p) for p in packed]
            config_type, manifest_type = OCI_CONFIG, OCI_MANIFEST
        manifest_bytes, config_desc = make_manifest(config_bytes, layer_descs, config_type, manifest_type)
        if not client.has_blob(ref.repository, config_desc.digest):
            with tempfile.TemporaryDirectory(dir=store.tmp) as work:
                path = Path(work) / "config"
                path.write_bytes(config_bytes)
                client.upload_blob(ref.repository, path, config_desc)
        digest = client.put_manifest(ref.repository, ref.reference, manifest_bytes, manifest_type)
        pushed_ids = diff_ids(load(config_bytes, text), text)
        for layer, desc, diff_id in zip(present, layer_descs, pushed_ids, strict=True):
            note = functools.partial(
                LayerRecord.note_blob,
                digest=desc.digest,
                size=desc.size,
                media_type=desc.media_type,
                diff_id=diff_id,
                repo=ref.name,
            )
            store.update_layer(layer.id, note)
        return digest
    finally:
        if own:
            client.close()


def _reuse_original(
    client: RegistryClient, registry: str, repository: str, layers: list[LayerRecord], want: list[str]
) -> list[Descriptor] | None:
    """Blobs holding exactly the config's diff_ids, if the target has or can mount every one; else None.

    Pushing the blobs an image was pulled as keeps its config, image id and layer digests unchanged.
    """
    plan: list[Descriptor] = []
    for layer, diff_id in zip(layers, want, strict=True):
        chosen = None
        for digest, info in layer.blobs.items():
            desc = Descriptor(str(info.get("media_type") or ""), digest, int(info["size"]))
            if not desc.media_type or info.get("diff_id") != diff_id:
                continue
            if client.has_blob(repository, digest):
                chosen = desc
                break
            for repo in info.get("repos", []):
                host, _, other = str(repo).partition("/")
                if host == registry and other != repository and client.mount_blob(repository, digest, other):
                    chosen = desc
                    break
            if chosen:
                break
        if chosen is None:
            return None
        plan.append(chosen)
    return plan


def _push_packed(client: RegistryClient, store: Store, repository: str, layer: LayerRecord) -> PackedLayer:
    """Our own blob of the layer: skipped when the registry has it, packed and uploaded otherwise."""
    cached = cached_packed(store, layer.id)
    if cached is not None and client.has_blob(repository, cached.digest):
        return cached
    with tempfile.TemporaryDirectory(dir=store.tmp) as work:
        path = Path(work) / "blob"
        packed = pack_stored_layer(store, layer.id, path)
        if not client.has_blob(repository, packed.digest):
            client.upload_blob(repository, path, layer_descriptor(packed))
    return packed
