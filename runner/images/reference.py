"""Image references parsed and normalized as Docker does (`python:3.12` is Docker Hub's `library/python`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from runner.images.errors import ImageError

HOST = "host"  # the host image: a curated view of the host's system directories, never a registry reference
DOCKER_HUB = "registry-1.docker.io"  # where Docker Hub's short names are pulled from
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", DOCKER_HUB})
DEFAULT_TAG = "latest"
_NAME_MAX = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_COMPONENT_RE = re.compile(rf"{_COMPONENT}\Z")
_DOMAIN_RE = re.compile(rf"{_DOMAIN}\Z")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}\Z")
_DIGEST_RE = re.compile(r"(?P<algo>[a-z0-9]+(?:[.+_-][a-z0-9]+)*):(?P<hex>[a-zA-Z0-9=_-]+)\Z")
_DIGEST_HEX = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True)
class ImageRef:
    """A normalized registry reference: `registry/repository[:tag][@digest]`.

    `tag` is None only when a digest was given without a tag (`python@sha256:...`), as in Docker.
    """

    registry: str
    repository: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def name(self) -> str:
        """`registry/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What goes after `/manifests/` in a registry URL: the digest when there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def familiar(self) -> str:
        """The short form Docker prints: `python:3.12` for `registry-1.docker.io/library/python:3.12`."""
        name = self.name
        if self.registry == DOCKER_HUB:
            name = self.repository.removeprefix("library/")
        text = name if self.tag is None else f"{name}:{self.tag}"
        return text if self.digest is None else f"{text}@{self.digest}"

    def with_tag(self, tag: str) -> ImageRef:
        return ImageRef(self.registry, self.repository, tag, None)


def is_host(text: str) -> bool:
    """Whether `text` names the host image rather than an OCI image."""
    return text.strip() == HOST


def validate_digest(digest: str) -> str:
    """Check the form `algorithm:hex`; only sha256 and sha512 are understood."""
    match = _DIGEST_RE.match(digest)
    if not match:
        raise ImageError(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    algo, hexpart = match.group("algo"), match.group("hex")
    want = _DIGEST_HEX.get(algo)
    if want is None:
        raise ImageError(f"unsupported digest algorithm {algo!r} in {digest!r}: use sha256")
    if len(hexpart) != want or not re.fullmatch(r"[0-9a-f]+", hexpart):
        raise ImageError(f"invalid digest {digest!r}: {algo} needs {want} lowercase hex digits")
    return digest


def parse_ref(text: str) -> ImageRef:
    """Parse a reference like Docker: registry Docker Hub, `library/` for one-part names, tag `latest`.

    A first component is a registry when it contains `.` or `:`, is `localhost`, or has capitals.
    Raises `ImageError` with the reason for anything Docker would refuse, and for `host`.
    """
    original = text
    text = text.strip()
    if not text:
        raise ImageError("invalid image reference '': it is empty")
    if is_host(text):
        raise ImageError("'host' is the host image, not a registry reference")
    if any(ch.isspace() for ch in text):
        raise ImageError(f"invalid image reference {original!r}: it contains whitespace")
    digest: str | None = None
    if "@" in text:
        text, _, digest = text.partition("@")
        validate_digest(digest)
    tag: str | None = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise ImageError(f"invalid tag {tag!r} in {original!r}: use letters, digits, '_', '.', '-'")
    if not text:
        raise ImageError(f"invalid image reference {original!r}: the name is missing")
    registry, rest = _split_domain(text)
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in rest:
            rest = f"library/{rest}"
    if not _DOMAIN_RE.match(registry):
        raise ImageError(f"invalid registry {registry!r} in {original!r}")
    for part in rest.split("/"):
        if not _COMPONENT_RE.match(part):
            if part.lower() != part and _COMPONENT_RE.match(part.lower()):
                raise ImageError(f"invalid image reference {original!r}: repository name must be lowercase")
            raise ImageError(
                f"invalid image reference {original!r}: bad name component {part!r} "
                "(lowercase letters, digits and single separators '.', '_', '__', '-')"
            )
    if len(rest) + len(registry) + 1 > _NAME_MAX:
        raise ImageError(f"invalid image reference {original!r}: name longer than {_NAME_MAX} characters")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return ImageRef(registry, rest, tag, digest)


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        return first, rest
    return DOCKER_HUB, name
