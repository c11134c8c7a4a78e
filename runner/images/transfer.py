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

from runner.images.config import ensure_portable
from runner.images.errors import ImageError
from runner.images.ingest import LayerSource, ingest
from runner.images.manifest import (
    INDEX_TYPES,
    OCI_MANIFEST,
    Descriptor,
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
from runner.images.reference import ImageRef, parse_ref
from runner.images.registry import RegistryClient
from runner.images.store import ImageRecord, LayerRecord, Store
from runner.images.tarpack import PackedLayer

PULL_WORKERS = 4
DOCKER_LAYER_TYPES = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
}


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
    ensure_portable(record.config, source or text, "push")
    own = client is None
    client = client or RegistryClient(ref.registry)
    try:
        layers = [store.layer(lid) for lid in record.layers]
        present = [layer for layer in layers if layer is not None]
        if len(present) != len(layers):
            raise ImageError(f"{text}: a layer of the image is missing from the store: pull or build it")
        original = store.config_bytes(record.id)
        config = load(original, text)
        rootfs = config.get("rootfs")
        current = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        want = list(current) if isinstance(current, list) and len(current) == len(present) else []
        chosen = [
            _send_layer(client, store, ref, layer, want[i] if want else None)
            for i, layer in enumerate(present)
        ]
        config_bytes = config_for(original, [diff_id for _, diff_id in chosen])
        layer_descs = [desc for desc, _ in chosen]
        manifest_bytes, config_desc = make_manifest(config_bytes, layer_descs)
        if not client.has_blob(ref.repository, config_desc.digest):
            with tempfile.TemporaryDirectory(dir=store.tmp) as work:
                path = Path(work) / "config"
                path.write_bytes(config_bytes)
                client.upload_blob(ref.repository, path, config_desc)
        digest = client.put_manifest(ref.repository, ref.reference, manifest_bytes, OCI_MANIFEST)
        for layer, (desc, diff_id) in zip(present, chosen, strict=True):
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


def _send_layer(
    client: RegistryClient, store: Store, ref: ImageRef, layer: LayerRecord, want: str | None
) -> tuple[Descriptor, str]:
    """A blob of the layer the target repository has: (its descriptor, the diff_id it holds).

    A blob the layer is already known by is reused when the registry has it or can mount it from
    another repository; blobs holding the config's own diff_id come first, so an image pulled and
    pushed elsewhere keeps its config and id. Otherwise our own packed blob goes up.
    """
    known = sorted(layer.blobs.items(), key=lambda item: item[1].get("diff_id") != want)
    for digest, info in known:
        diff_id, media = info.get("diff_id"), _oci_layer_type(str(info.get("media_type") or ""))
        if not diff_id or not media:
            continue
        desc = Descriptor(media, digest, int(info["size"]))
        if client.has_blob(ref.repository, digest):
            return desc, str(diff_id)
        for repo in info.get("repos", []):
            host, _, other = str(repo).partition("/")
            if (
                host == ref.registry
                and other != ref.repository
                and client.mount_blob(ref.repository, digest, other)
            ):
                return desc, str(diff_id)
    packed = _push_packed(client, store, ref.repository, layer)
    return layer_descriptor(packed), packed.diff_id


def _oci_layer_type(media_type: str) -> str | None:
    """The OCI name of a layer media type (Docker's names for the same formats included)."""
    if media_type.startswith("application/vnd.oci.image.layer.v1.tar"):
        return media_type
    return DOCKER_LAYER_TYPES.get(media_type)


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
