"""Image archives: importing an OCI layout (dir or tar) or a `docker save` tarball; exporting an OCI tar."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from runner.images.config import ensure_portable
from runner.images.digest import sha256_bytes
from runner.images.errors import ImageError
from runner.images.ingest import BlobOpener, LayerSource, ingest
from runner.images.manifest import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_MANIFEST,
    REF_NAME,
    Descriptor,
    index_json,
    load,
    parse_index,
    parse_manifest,
    pick_platform,
)
from runner.images.packimage import config_for, layer_descriptor, make_manifest, pack_stored_layer
from runner.images.reference import ImageRef, parse_ref
from runner.images.store import ImageRecord, Store
from runner.images.tarlayer import clean_path

CONTAINERD_NAME = "io.containerd.image.name"
FORMAT = tarfile.PAX_FORMAT
_MAX_JSON = 64 << 20


class _Archive:
    """Named files of an archive, read from a directory or a tar, never from outside it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tar: tarfile.TarFile | None = None
        self.members: dict[str, tarfile.TarInfo] = {}
        if path.is_dir():
            return
        try:
            self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
            for member in self.tar.getmembers():
                if member.isreg():
                    self.members["/".join(clean_path(member.name, str(path)))] = member
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise ImageError(f"{path}: not a readable image archive ({exc})") from None

    def _key(self, name: str) -> str:
        return "/".join(clean_path(name, str(self.path)))

    def has(self, name: str) -> bool:
        key = self._key(name)
        if self.tar is None:
            target = self.path / key
            return target.is_file() and not target.is_symlink()
        return key in self.members

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        key = self._key(name)
        if self.tar is None:
            try:
                fd = os.open(self.path / key, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError as exc:
                raise ImageError(f"{self.path}: cannot read {key}: {exc.strerror}") from None
            with os.fdopen(fd, "rb") as f:
                yield f
            return
        member = self.members.get(key)
        extracted = self.tar.extractfile(member) if member else None
        if extracted is None:
            raise ImageError(f"{self.path}: the archive has no file {key}")
        with extracted:
            yield extracted  # type: ignore[misc]

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            data = f.read(_MAX_JSON + 1)
        if len(data) > _MAX_JSON:
            raise ImageError(f"{self.path}: {name} is too large for a JSON document")
        return data

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()


def _blob_name(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


def import_archive(store: Store, path: Path, tag: str | None = None) -> list[tuple[ImageRecord, list[str]]]:
    """Import every image of an OCI layout or `docker save` tarball (host platform); tag them as named.

    `tag` names the image when the archive holds exactly one. Returns each image with its new tags.
    """
    if not path.exists():
        raise ImageError(f"{path}: no such file or directory")
    with store.adding():  # prune waits until the images are tagged, so it never takes their layers
        archive = _Archive(path)
        try:
            if archive.has("index.json") and archive.has("oci-layout"):
                imported = _import_oci(store, archive)
            elif archive.has("manifest.json"):
                imported = _import_docker(store, archive)
            else:
                raise ImageError(f"{path}: neither an OCI image layout nor a `docker save` tarball")
        finally:
            archive.close()
        if tag is not None:
            if len(imported) != 1:
                raise ImageError(f"{path}: holds {len(imported)} images; -t needs exactly one")
            imported[0][1].append(str(parse_ref(tag)))
        for record, names in imported:
            for name in names:
                store.tag(parse_ref(name), record.id)
    return imported


def _import_oci(store: Store, archive: _Archive) -> list[tuple[ImageRecord, list[str]]]:
    what = str(archive.path)
    layout = load(archive.read("oci-layout"), f"{what}: oci-layout")
    if not str(layout.get("imageLayoutVersion", "")).startswith("1."):
        raise ImageError(f"{what}: unsupported OCI layout version {layout.get('imageLayoutVersion')!r}")
    entries = parse_index(load(archive.read("index.json"), f"{what}: index.json"), what)
    chosen: list[tuple[Descriptor, list[str]]] = []
    for entry in entries:
        names = _names(entry.annotations)
        resolved = entry
        while resolved.media_type in INDEX_TYPES:
            nested = parse_index(load(archive.read(_blob_name(resolved.digest)), what), what)
            resolved = pick_platform(nested, what)
        if resolved.media_type not in MANIFEST_TYPES:
            continue  # attestations, artifacts
        if entry.platform and not _is_host(entry):
            continue
        chosen.append((resolved, names))
    if not chosen:
        raise ImageError(f"{what}: no image in the layout for this platform")
    results = []
    for desc, names in chosen:
        manifest_bytes = archive.read(_blob_name(desc.digest))
        manifest = parse_manifest(load(manifest_bytes, what), what)
        config_bytes = archive.read(_blob_name(manifest.config.digest))
        sources = [LayerSource(_opener(archive, _blob_name(x.digest)), x) for x in manifest.layers]
        record = ingest(
            store, config_bytes, sources, what=what, manifest=manifest, manifest_digest=desc.digest
        )
        results.append((record, names))
    return results


def _is_host(entry: Descriptor) -> bool:
    try:
        pick_platform([entry], "")
    except ImageError:
        return False
    return True


def _names(annotations: dict[str, str]) -> list[str]:
    """Full references from an index entry's annotations; a bare tag cannot name an image by itself."""
    names = []
    for key in (CONTAINERD_NAME, REF_NAME):
        value = annotations.get(key)
        if value and ("/" in value or ":" in value):
            with contextlib.suppress(ImageError):
                names.append(str(parse_ref(value)))
    return list(dict.fromkeys(names))


def _opener(archive: _Archive, name: str) -> BlobOpener:
    return lambda: archive.open(name)


def _import_docker(store: Store, archive: _Archive) -> list[tuple[ImageRecord, list[str]]]:
    what = str(archive.path)
    try:
        entries = json.loads(archive.read("manifest.json"))
    except ValueError as exc:
        raise ImageError(f"{what}: manifest.json is not valid JSON ({exc})") from None
    if not isinstance(entries, list) or not entries:
        raise ImageError(f"{what}: manifest.json lists no images")
    results = []
    for entry in entries:
        if not isinstance(entry, dict) or "Config" not in entry or not isinstance(entry.get("Layers"), list):
            raise ImageError(f"{what}: manifest.json entry without Config and Layers")
        config_bytes = archive.read(str(entry["Config"]))
        sources = [LayerSource(_opener(archive, str(name)), None) for name in entry["Layers"]]
        record = ingest(store, config_bytes, sources, what=what)
        names = []
        for tag in entry.get("RepoTags") or []:
            with contextlib.suppress(ImageError):
                names.append(str(parse_ref(str(tag))))
        results.append((record, names))
    return results


def export_archive(store: Store, ref: str, out: Path) -> ImageRecord:
    """Write the image `ref` as an OCI image layout tar at `out` (gzip layers), replacing it whole."""
    record = store.resolve(ref)
    ensure_portable(record.config, ref, "export")
    try:
        name: ImageRef | None = parse_ref(ref)
    except ImageError:
        name = None
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="export-", dir=store.tmp) as work:
        blobs = Path(work)
        packed = [pack_stored_layer(store, lid, blobs / f"layer{i}") for i, lid in enumerate(record.layers)]
        config_bytes = config_for(store.config_bytes(record.id), [p.diff_id for p in packed])
        layers = [layer_descriptor(p) for p in packed]
        manifest_bytes, config_desc = make_manifest(config_bytes, layers)
        annotations = {}
        if name is not None and name.tag is not None:
            annotations = {REF_NAME: name.tag, CONTAINERD_NAME: str(name.with_tag(name.tag))}
        platform = {"os": "linux", "architecture": str(record.config.get("architecture") or "amd64")}
        digest = sha256_bytes(manifest_bytes)
        manifest_desc = Descriptor(OCI_MANIFEST, digest, len(manifest_bytes), platform, annotations)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=FORMAT) as tar:
                _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
                _add_bytes(tar, "index.json", index_json([manifest_desc]))
                _add_bytes(tar, _blob_name(digest), manifest_bytes)
                _add_bytes(tar, _blob_name(config_desc.digest), config_bytes)
                for i, desc in enumerate(layers):
                    tar.add(str(blobs / f"layer{i}"), arcname=_blob_name(desc.digest), filter=_plain)
            os.replace(tmp_name, out)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
    return record


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Archive members without the exporting machine's owners, modes or times."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    info.mtime = 0
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = _plain(tarfile.TarInfo(name))
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
