"""The build context: `.dockerignore`, content digests of COPY sources, and path-safe copies into a layer.

A COPY's cache key hashes what it copies: relative paths, file types, modes and contents (never
mtimes, so a fresh clone hits the cache of another). Sources resolve inside the context only: a
source that is, or passes through, a symlink out of the context is refused; symlinks inside a copied
directory are copied as symlinks.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from runner.images.errors import ImageError


@dataclass(frozen=True)
class IgnoreRule:
    pattern: re.Pattern[str]
    negate: bool


def _translate(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over `/`-separated paths."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if i < len(pattern) and pattern[i] == "/":
                i += 1
                out[-1] = "(?:.*/)?"
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i)
            if end == -1:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append(fnmatch.translate(pattern[i : end + 1])[4:-3])
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + "(?:/.*)?$")


def load_dockerignore(context: Path) -> list[IgnoreRule]:
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    rules = []
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        if line in ("", "."):
            continue
        rules.append(IgnoreRule(_translate(line), negate))
    return rules


def ignored(rel: str, rules: list[IgnoreRule]) -> bool:
    result = False
    for rule in rules:
        if rule.pattern.match(rel):
            result = not rule.negate
    return result


def resolve_source(context: Path, source: str) -> Path:
    """A COPY source inside the context, symlinks resolved within it; refused if it leaves the context."""
    root = context.resolve()
    candidate = (root / source.lstrip("/")).resolve()
    if candidate != root and root not in candidate.parents:
        raise ImageError(f"COPY source {source!r} points outside the build context")
    return candidate


def expand_sources(context: Path, sources: list[str], rules: list[IgnoreRule]) -> list[Path]:
    """Sources with globs expanded (sorted), each inside the context; a source matching nothing fails."""
    found: list[Path] = []
    root = context.resolve()
    for source in sources:
        if any(ch in source for ch in "*?["):
            matches = sorted(
                p for p in root.glob(source.lstrip("/")) if not ignored(p.relative_to(root).as_posix(), rules)
            )
            if not matches:
                raise ImageError(f"COPY source {source!r} matches no file in the build context")
            found += [resolve_source(context, m.relative_to(root).as_posix()) for m in matches]
        else:
            path = resolve_source(context, source)
            if not os.path.lexists(path):
                raise ImageError(f"COPY source {source!r} does not exist in the build context")
            if not path.is_dir() and path != root and ignored(path.relative_to(root).as_posix(), rules):
                raise ImageError(f"COPY source {source!r} is excluded by .dockerignore")  # as in Docker
            found.append(path)
    return found


def _walk(path: Path, root: Path, rules: list[IgnoreRule]) -> list[Path]:
    """Every entry under `path` (itself included), sorted, minus ignored ones; symlinks not followed."""
    entries = [path]
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            keep = []
            for name in dirnames:
                full = Path(dirpath) / name
                if not ignored(full.relative_to(root).as_posix(), rules):
                    keep.append(name)
                    entries.append(full)
                elif any(rule.negate for rule in rules):
                    keep.append(name)  # an `!exception` may re-include something below an ignored dir
            dirnames[:] = keep
            for name in sorted(filenames):
                full = Path(dirpath) / name
                if not ignored(full.relative_to(root).as_posix(), rules):
                    entries.append(full)
    return entries


def content_digest(context: Path, sources: list[Path], rules: list[IgnoreRule]) -> str:
    """sha256 over relative path, type, mode and content of everything the sources copy."""
    root = context.resolve()
    digest = hashlib.sha256()
    for source in sources:
        base = source.parent
        for entry in _walk(source, root, rules):
            st = entry.lstat()
            rel = entry.relative_to(base).as_posix()
            digest.update(os.fsencode(rel))  # names need not be UTF-8
            digest.update(f"\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode):o}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                digest.update(os.fsencode(os.readlink(entry)))
            elif stat.S_ISREG(st.st_mode):
                with open(entry, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        digest.update(chunk)
            digest.update(b"\n")
    return digest.hexdigest()


def _chown(path: Path, owner: tuple[int, int]) -> None:
    os.lchown(path, owner[0], owner[1])


def copy_into_layer(
    context: Path,
    sources: list[Path],
    dest: str,
    layer: Path,
    rules: list[IgnoreRule],
    owner: tuple[int, int] = (0, 0),
    mode: int | None = None,
) -> None:
    """Copy sources into `layer` at container path `dest` with Docker's COPY semantics."""
    root = context.resolve()
    as_dir = dest.endswith("/") or len(sources) > 1 or any(s.is_dir() and not s.is_symlink() for s in sources)
    target = layer / dest.strip("/") if dest.strip("/") else layer
    parent = target if as_dir else target.parent
    parent.mkdir(parents=True, exist_ok=True)
    for source in sources:
        if source.is_dir() and not source.is_symlink():
            for entry in _walk(source, root, rules)[1:]:
                out = target / entry.relative_to(source)
                _copy_entry(entry, out, owner, mode)
            target.mkdir(parents=True, exist_ok=True)
        else:
            out = target / source.name if as_dir else target
            _copy_entry(source, out, owner, mode)


def _copy_entry(src: Path, out: Path, owner: tuple[int, int], mode: int | None) -> None:
    st = src.lstat()
    out.parent.mkdir(parents=True, exist_ok=True)
    if stat.S_ISLNK(st.st_mode):
        if os.path.lexists(out):
            out.unlink()
        os.symlink(os.readlink(src), out)
    elif stat.S_ISDIR(st.st_mode):
        out.mkdir(exist_ok=True)
        os.chmod(out, mode if mode is not None else stat.S_IMODE(st.st_mode))
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(src, out, follow_symlinks=False)
        os.chmod(out, mode if mode is not None else stat.S_IMODE(st.st_mode))
    else:
        return  # sockets, fifos and devices are not copied
    _chown(out, owner)
