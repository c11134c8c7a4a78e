"""OCI and Docker schema2 manifests and indexes: parsing, picking the host's platform, writing."""

from __future__ import annotations

import json
import platform as _platform
from dataclasses import dataclass, field
from typing import Any

from runner.images.errors import ImageError
from runner.images.reference import validate_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            value["platform"] = self.platform
        if self.annotations:
            value["annotations"] = self.annotations
        return value


@dataclass(frozen=True)
class Manifest:
    """An image manifest: the config blob and the layer blobs, bottom layer first."""

    media_type: str
    config: Descriptor
    layers: list[Descriptor]


def _descriptor(value: Any, what: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ImageError(f"{what}: a descriptor is not an object")
    try:
        digest, size = str(value["digest"]), value["size"]
    except KeyError as exc:
        raise ImageError(f"{what}: a descriptor has no {exc.args[0]}") from None
    validate_digest(digest)
    if not isinstance(size, int) or size < 0:
        raise ImageError(f"{what}: descriptor {digest} has an invalid size {size!r}")
    return Descriptor(
        media_type=str(value.get("mediaType", "")),
        digest=digest,
        size=size,
        platform=value.get("platform"),
        annotations=dict(value.get("annotations") or {}),
    )


def load(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImageError(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ImageError(f"{what}: not a JSON object")
    return value


def kind(doc: dict[str, Any], content_type: str | None = None) -> str:
    """The media type of a manifest document: its own field, else the HTTP content type, else by shape."""
    media = doc.get("mediaType") or content_type or ""
    if media in MANIFEST_TYPES or media in INDEX_TYPES:
        return str(media)
    if "manifests" in doc:
        return OCI_INDEX
    if "layers" in doc and "config" in doc:
        return OCI_MANIFEST
    if doc.get("schemaVersion") == 1:
        raise ImageError("Docker schema 1 manifests are not supported: push the image with a newer tool")
    raise ImageError(f"unsupported manifest type {media!r}")


def parse_manifest(doc: dict[str, Any], what: str) -> Manifest:
    media = kind(doc)
    if media not in MANIFEST_TYPES:
        raise ImageError(f"{what}: expected an image manifest, got {media}")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ImageError(f"{what}: manifest has no layer list")
    return Manifest(media, _descriptor(doc.get("config"), what), [_descriptor(x, what) for x in layers])


def parse_index(doc: dict[str, Any], what: str) -> list[Descriptor]:
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise ImageError(f"{what}: index has no manifest list")
    return [_descriptor(x, what) for x in entries]


def host_platform() -> tuple[str, str, str | None]:
    """(os, architecture, variant) of this machine in OCI words, e.g. ("linux", "amd64", None)."""
    machine = _platform.machine().lower()
    table: dict[str, tuple[str, str | None]] = {
        "x86_64": ("amd64", None),
        "amd64": ("amd64", None),
        "aarch64": ("arm64", "v8"),
        "arm64": ("arm64", "v8"),
        "armv7l": ("arm", "v7"),
        "armv6l": ("arm", "v6"),
        "i686": ("386", None),
        "i386": ("386", None),
        "ppc64le": ("ppc64le", None),
        "s390x": ("s390x", None),
        "riscv64": ("riscv64", None),
    }
    arch, variant = table.get(machine, (machine, None))
    return "linux", arch, variant


def pick_platform(
    entries: list[Descriptor], what: str, want: tuple[str, str, str | None] | None = None
) -> Descriptor:
    """The entry of an index for the host platform (or `want`); attestation manifests never match."""
    os_name, arch, variant = want or host_platform()
    candidates = []
    for entry in entries:
        plat = entry.platform or {}
        if plat.get("os") != os_name or plat.get("architecture") != arch:
            continue
        if entry.media_type not in MANIFEST_TYPES and entry.media_type not in INDEX_TYPES:
            continue
        candidates.append(entry)
    if variant is not None:
        exact = [e for e in candidates if (e.platform or {}).get("variant") == variant]
        candidates = exact or [e for e in candidates if not (e.platform or {}).get("variant")] or candidates
    if not candidates:
        plats = [e.platform or {} for e in entries]
        offered = sorted({f"{p.get('os')}/{p.get('architecture')}" for p in plats})
        raise ImageError(f"{what}: no image for {os_name}/{arch} (it offers {', '.join(offered) or 'none'})")
    return candidates[0]


def manifest_json(config: Descriptor, layers: list[Descriptor], media_type: str = OCI_MANIFEST) -> bytes:
    """An image manifest for the config and layers, as canonical bytes (its digest is its identity)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def index_json(manifests: list[Descriptor]) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [m.to_json() for m in manifests]}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def diff_ids(config: dict[str, Any], what: str) -> list[str]:
    """The `rootfs.diff_ids` of an image config, checked."""
    rootfs = config.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
        raise ImageError(f"{what}: image config has no rootfs.diff_ids list")
    for x in ids:
        validate_digest(x)
    return list(ids)
