"""The local image store under RUNNER_HOME: applied layers keyed by chain id, image records and tags.

Layout (short names keep overlay mount options within one page):
    l/<16 hex>/          the applied layer, mounted as an overlay lower dir
    l/<16 hex>.json      its record; a layer directory without one is incomplete and redone
    l/<16 hex>.lock      flock held while the layer is being made, so other processes wait for it
    images/<id>/         config.json (the image id is its sha256) and image.json (layers, digests, times)
    images/tags.json     `registry/repo:tag` -> image id
    images/.lock         flock for tags and image records
    images/.adding       shared while layers and images are being added, exclusive for rm and prune
    images/<id>/.lease   shared while a container uses the image: rm and prune leave it alone
Everything appears by atomic rename, so a crash leaves either nothing or something whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runner.images.digest import sha256_bytes
from runner.images.errors import ImageError
from runner.images.fsutil import disk_usage, flocked, read_json, remove_tree, write_json
from runner.images.reference import ImageRef, parse_ref
from runner.settings import Paths


@dataclass
class LayerRecord:
    """One applied layer. `id` is its chain id when pulled or imported, a build cache key when built."""

    id: str
    name: str
    diff_id: str | None = None
    parent: str | None = None
    size: int = 0
    blobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # compressed digest -> size, type, repos
    packed: dict[str, Any] | None = None  # our deterministic blob: diff_id, digest, size, media_type
    created: float = 0.0
    last_used: float = 0.0

    def note_blob(self, digest: str, *, size: int, media_type: str, diff_id: str, repo: str | None) -> None:
        """Remember a compressed blob of this layer, the tar it holds, and which repositories have it."""
        entry = self.blobs.setdefault(digest, {"size": size, "media_type": media_type, "diff_id": diff_id})
        entry.setdefault("diff_id", diff_id)
        repos = entry.setdefault("repos", [])
        if repo and repo not in repos:
            repos.append(repo)


@dataclass
class ImageRecord:
    """An image: its config, its layers bottom first, and the manifest digests it was known by."""

    id: str
    layers: list[str]
    config: dict[str, Any] = field(default_factory=dict)
    manifest_digest: str | None = None
    repo_digests: list[str] = field(default_factory=list)
    created: float = 0.0
    last_used: float = 0.0


def layer_name(layer_id: str) -> str:
    """The short directory name of a layer: 16 hex digits of its id (hashed first if it is not a digest)."""
    algo, _, hexpart = layer_id.partition(":")
    if algo != "sha256" or len(hexpart) != 64:
        hexpart = hashlib.sha256(layer_id.encode()).hexdigest()
    return hexpart[:16]


class Store:
    """The image store of one RUNNER_HOME; safe to use from several processes at once."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.layers_dir = paths.layers
        self.images_dir = paths.images
        self.tmp = paths.tmp
        for d in (self.layers_dir, self.images_dir, self.tmp):
            d.mkdir(parents=True, exist_ok=True)

    # ---- layers ----------------------------------------------------------------------------------------

    def layer_path(self, layer_id: str) -> Path:
        return self.layers_dir / layer_name(layer_id)

    def _meta_path(self, layer_id: str) -> Path:
        return self.layers_dir / f"{layer_name(layer_id)}.json"

    @contextlib.contextmanager
    def _layer_lock(self, layer_id: str) -> Iterator[None]:
        with flocked(self.layers_dir / f"{layer_name(layer_id)}.lock"):
            yield

    def layer(self, layer_id: str) -> LayerRecord | None:
        """The record of a complete layer, or None."""
        data = read_json(self._meta_path(layer_id))
        if data is None or data.get("id") != layer_id or not self.layer_path(layer_id).is_dir():
            return None
        return LayerRecord(**data)

    def all_layers(self) -> list[LayerRecord]:
        found = []
        for meta in sorted(self.layers_dir.glob("*.json")):
            data = read_json(meta)
            if data is not None and (self.layers_dir / data["name"]).is_dir():
                found.append(LayerRecord(**data))
        return found

    def ensure_layer(
        self, layer_id: str, make: Callable[[Path], LayerRecord], *, parent: str | None = None
    ) -> LayerRecord:
        """The layer `layer_id`, made by `make(dest)` unless it exists. One process makes it; others wait.

        `make` must create `dest` whole (by rename) and return a record of what it made.
        """
        existing = self.layer(layer_id)
        if existing is not None:
            self.touch_layers([layer_id])
            return existing
        with self._layer_lock(layer_id):
            existing = self.layer(layer_id)
            if existing is not None:
                self._save_layer(existing, used=True)
                return existing
            dest = self.layer_path(layer_id)
            if dest.exists():  # left by a crash before its record was written
                remove_tree(dest, self.tmp)
            record = make(dest)
            if not dest.is_dir():
                raise ImageError(f"layer {layer_id}: was not created")
            record.id, record.name, record.parent = layer_id, layer_name(layer_id), parent
            record.size = disk_usage(dest)
            record.created = record.created or time.time()
            self._save_layer(record, used=True)
            return record

    def commit_layer(
        self, src: Path, layer_id: str, *, parent: str | None = None, diff_id: str | None = None
    ) -> LayerRecord:
        """Make the directory `src` (on the store's filesystem) the layer `layer_id` by renaming it.

        If the layer already exists, `src` is left alone and the existing layer returned.
        """

        def rename(dest: Path) -> LayerRecord:
            os.rename(src, dest)
            return LayerRecord(id=layer_id, name="", diff_id=diff_id)

        return self.ensure_layer(layer_id, rename, parent=parent)

    def update_layer(self, layer_id: str, change: Callable[[LayerRecord], None]) -> None:
        """Apply `change` to the layer's record under its lock (blobs seen, packed form...)."""
        with self._layer_lock(layer_id):
            record = self.layer(layer_id)
            if record is not None:
                change(record)
                self._save_layer(record, used=False)

    def touch_layers(self, layer_ids: Iterable[str]) -> None:
        """Record that these layers were just used (prune removes the least recently used first)."""
        now = time.time()
        for layer_id in layer_ids:
            if read_json(self._meta_path(layer_id)) is None:
                continue  # incomplete: its maker holds the lock and records the time itself
            with self._layer_lock(layer_id):
                data = read_json(self._meta_path(layer_id))
                if data is not None and data.get("id") == layer_id:
                    data["last_used"] = now
                    write_json(self._meta_path(layer_id), data, durable=False)  # a crash only ages it

    def _save_layer(self, record: LayerRecord, *, used: bool) -> None:
        if used:
            record.last_used = time.time()
        write_json(self._meta_path(record.id), asdict(record))

    def _remove_layer(self, layer_id: str) -> int:
        """Delete a layer if no one is making it right now; returns the bytes freed."""
        with flocked(self.layers_dir / f"{layer_name(layer_id)}.lock", blocking=False) as got:
            if not got:
                return 0
            record = self.layer(layer_id)
            self._meta_path(layer_id).unlink(missing_ok=True)  # first: a dir without it is incomplete
            remove_tree(self.layer_path(layer_id), self.tmp)
            return record.size if record else 0

    # ---- images and tags -------------------------------------------------------------------------------

    def _image_dir(self, image_id: str) -> Path:
        return self.images_dir / image_id.partition(":")[2]

    def _lock(self) -> contextlib.AbstractContextManager[bool]:
        return flocked(self.images_dir / ".lock")

    def put_image(
        self,
        config_bytes: bytes,
        layer_ids: list[str],
        *,
        manifest_digest: str | None = None,
        repo_digests: Iterable[str] = (),
    ) -> ImageRecord:
        """Record an image whose layers are all in the store; the image id is the digest of its config."""
        for layer_id in layer_ids:
            if self.layer(layer_id) is None:
                raise ImageError(f"image config refers to layer {layer_id}, which is not in the store")
        image_id = sha256_bytes(config_bytes)
        with self._lock():
            record = self.image(image_id)
            if record is None:
                record = ImageRecord(id=image_id, layers=list(layer_ids), created=time.time())
                folder = self._image_dir(image_id)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "config.json").write_bytes(config_bytes)
            record.layers = list(layer_ids)
            if manifest_digest:
                record.manifest_digest = manifest_digest
            for repo_digest in repo_digests:
                if repo_digest not in record.repo_digests:
                    record.repo_digests.append(repo_digest)
            record.last_used = time.time()
            self._save_image(record)
        record.config = self.config(image_id)
        return record

    def _save_image(self, record: ImageRecord) -> None:
        data = asdict(record)
        data.pop("config")
        write_json(self._image_dir(record.id) / "image.json", data)

    def image(self, image_id: str) -> ImageRecord | None:
        data = read_json(self._image_dir(image_id) / "image.json")
        return None if data is None else ImageRecord(**data)

    def config_bytes(self, image_id: str) -> bytes:
        return (self._image_dir(image_id) / "config.json").read_bytes()

    def config(self, image_id: str) -> dict[str, Any]:
        value = json.loads(self.config_bytes(image_id))
        return value if isinstance(value, dict) else {}

    def images(self) -> list[ImageRecord]:
        found = []
        for meta in sorted(self.images_dir.glob("*/image.json")):
            data = read_json(meta)
            if data is not None:
                found.append(ImageRecord(**data))
        return found

    def tags(self) -> dict[str, str]:
        """Every tag, `registry/repository:tag` -> image id."""
        return dict(read_json(self.images_dir / "tags.json") or {})

    def tag(self, ref: ImageRef, image_id: str) -> None:
        if ref.tag is None:
            raise ImageError(f"cannot tag {ref}: a tag is needed, not only a digest")
        with self._lock():
            tags = self.tags()
            tags[str(ref.with_tag(ref.tag))] = image_id
            write_json(self.images_dir / "tags.json", tags)

    def resolve(self, text: str) -> ImageRecord:
        """The image a user means by `text`: a tag, `name@digest`, or an image id (8+ hex digits of it)."""
        ref: ImageRef | None
        try:
            ref = parse_ref(text)
        except ImageError:
            ref = None
        if ref is not None:
            if ref.digest is not None:
                for record in self.images():
                    if f"{ref.name}@{ref.digest}" in record.repo_digests:
                        return self._touched(record)
            elif (image_id := self.tags().get(str(ref))) and (tagged := self.image(image_id)):
                return self._touched(tagged)
        hexpart = text.removeprefix("sha256:")
        if len(hexpart) >= 8 and all(c in "0123456789abcdef" for c in hexpart):
            matches = [r for r in self.images() if r.id.partition(":")[2].startswith(hexpart)]
            if len(matches) == 1:
                return self._touched(matches[0])
            if len(matches) > 1:
                raise ImageError(f"image id prefix {text!r} is ambiguous: give more digits")
        shown = ref.familiar() if ref is not None else text
        raise ImageError(f"no image {shown!r} in the store: pull, import or build it first")

    def _touched(self, record: ImageRecord) -> ImageRecord:
        record.config = self.config(record.id)
        return record

    def adding(self) -> contextlib.AbstractContextManager[bool]:
        """Hold while adding layers and then the image that uses them, so rm and prune wait for it."""
        return flocked(self.images_dir / ".adding", exclusive=False)

    def _lease_path(self, image_id: str) -> Path:
        return self._image_dir(image_id) / ".lease"

    @contextlib.contextmanager
    def lease(self, text: str) -> Iterator[tuple[ImageRecord, list[Path]]]:
        """The image and its layer dirs (top first), kept from rm and prune until the block ends.

        The engine holds this for as long as a container's overlay mount uses the layers.
        """
        record = self.resolve(text)
        with flocked(self._lease_path(record.id), exclusive=False):
            yield self.use(record.id)

    def use(self, text: str) -> tuple[ImageRecord, list[Path]]:
        """The image and its layer directories top first (overlay `lowerdir=` order), marked as just used."""
        record = self.resolve(text)
        paths = []
        for layer_id in reversed(record.layers):
            if self.layer(layer_id) is None:
                raise ImageError(f"image {text!r}: layer {layer_id} is missing from the store: pull it again")
            paths.append(self.layer_path(layer_id))
        self.touch_layers(record.layers)
        with self._lock():
            current = self.image(record.id)
            if current is not None:
                current.last_used = time.time()
                self._save_image(current)
        return record, paths

    def remove(self, text: str) -> list[str]:
        """Untag `text` (or every tag of an image id); an untagged image goes, with its unshared layers.

        Returns the tags removed and the image id if the image itself was deleted.
        """
        record = self.resolve(text)
        with flocked(self.images_dir / ".adding"), self._lock():
            tags = self.tags()
            try:
                ref: ImageRef | None = parse_ref(text)
            except ImageError:
                ref = None
            if ref is not None and ref.digest is None and tags.get(str(ref)) == record.id:
                doomed_tags = [str(ref)]
            else:
                doomed_tags = [t for t, i in tags.items() if i == record.id]
            for t in doomed_tags:
                del tags[t]
            write_json(self.images_dir / "tags.json", tags)
            removed = list(doomed_tags)
            if record.id in tags.values():
                return removed
            with flocked(self._lease_path(record.id), blocking=False) as free:
                if not free:  # in use by a container: stays untagged until prune finds it idle
                    return removed
                remove_tree(self._image_dir(record.id), self.tmp)
                removed.append(record.id)
                still_used = {lid for other in self.images() for lid in other.layers}
                for layer_id in record.layers:
                    if layer_id not in still_used:
                        self._remove_layer(layer_id)
        return removed

    def prune(self, keep_bytes: int = 0) -> tuple[int, int]:
        """Delete layers no tagged or leased image uses, least recently used first, until under `keep_bytes`.

        Untagged images that lost a layer go too. Returns (layers removed, bytes freed).
        """
        removed = freed = 0
        with flocked(self.images_dir / ".adding"), self._lock(), contextlib.ExitStack() as held:
            tagged = set(self.tags().values())
            protected: set[str] = set()
            for record in self.images():
                idle = record.id not in tagged and held.enter_context(
                    flocked(self._lease_path(record.id), blocking=False)
                )
                if not idle:
                    protected.update(record.layers)
            layers = self.all_layers()
            total = sum(layer.size for layer in layers)
            candidates = [x for x in layers if x.id not in protected]
            for layer in sorted(candidates, key=lambda x: x.last_used):
                if total <= keep_bytes:
                    break
                size = self._remove_layer(layer.id)
                if size or self.layer(layer.id) is None:
                    removed += 1
                    freed += size
                    total -= size
            for record in self.images():
                if record.id not in tagged and any(self.layer(lid) is None for lid in record.layers):
                    remove_tree(self._image_dir(record.id), self.tmp)
        return removed, freed
