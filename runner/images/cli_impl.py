"""What `runner image ls|rm|prune|pull|push|import|export` do and print; the argument parsing lives elsewhere.

Each function returns the exit code (0 done, 1 failed) and reports a failure as one line on stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from runner.images.errors import ImageError
from runner.images.reference import DOCKER_HUB, parse_ref
from runner.images.store import Store
from runner.units import format_bytes


def parse_size(text: str) -> int:
    """`500M`, `1.5G`, `2048` or `10KiB` -> bytes, as ci.yml reads sizes; `0` too (prune everything)."""
    from runner.config.units import parse_size as parse_positive_size

    if text.strip() == "0":
        return 0
    try:
        return parse_positive_size(text)
    except ValueError as exc:
        raise ImageError(str(exc)) from None


def _ago(then: float) -> str:
    if not then:
        return "never"
    seconds = max(0.0, time.time() - then)
    for size, unit in ((86400, "days"), (3600, "hours"), (60, "minutes")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def _guard(action: Callable[[], int]) -> int:
    try:
        return action()
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error:{where}: {exc.strerror or exc}", file=sys.stderr)
    except Exception as exc:  # a bug of ours: still one line, never a traceback
        print(f"error: unexpected {type(exc).__name__}: {exc} (please report this)", file=sys.stderr)
    return 1


def ls(store: Store) -> int:
    def run() -> int:
        tags = store.tags()
        by_image: dict[str, list[str]] = {}
        for name, image_id in sorted(tags.items()):
            by_image.setdefault(image_id, []).append(name)
        sizes = {layer.id: layer.size for layer in store.all_layers()}
        rows = []
        for record in sorted(store.images(), key=lambda r: r.created, reverse=True):
            size = format_bytes(sum(sizes.get(lid, 0) for lid in record.layers))
            short = record.id.partition(":")[2][:12]
            for name in by_image.get(record.id, ["<none>:<none>"]):
                repo, tag = _split_tag(name)
                rows.append((repo, tag, short, size, _ago(record.last_used)))
        header = ("REPOSITORY", "TAG", "IMAGE ID", "SIZE", "LAST USED")
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        return 0

    return _guard(run)


def _split_tag(name: str) -> tuple[str, str]:
    if name.startswith("<none>"):
        return "<none>", "<none>"
    ref = parse_ref(name)
    repo = ref.repository.removeprefix("library/") if ref.registry == DOCKER_HUB else ref.name
    return repo, ref.tag or "<none>"


def rm(store: Store, ref: str) -> int:
    def run() -> int:
        for item in store.remove(ref):
            if item.startswith("sha256:"):
                print(f"Deleted: {item}")
            else:
                print(f"Untagged: {parse_ref(item).familiar()}")
        return 0

    return _guard(run)


def prune(store: Store, keep: str = "0") -> int:
    def run() -> int:
        removed, freed = store.prune(parse_size(keep))
        print(f"Removed {removed} layer{'s' if removed != 1 else ''}, freed {format_bytes(freed)}")
        return 0

    return _guard(run)


def pull(store: Store, ref: str) -> int:
    def run() -> int:
        from runner.images.transfer import pull as _pull

        record = _pull(ref, store)
        print(f"Pulled {parse_ref(ref).familiar()}: {record.id}")
        return 0

    return _guard(run)


def push(store: Store, ref: str) -> int:
    def run() -> int:
        from runner.images.transfer import push as _push

        digest = _push(ref, store)
        print(f"Pushed {parse_ref(ref).familiar()}: {digest}")
        return 0

    return _guard(run)


def import_(store: Store, file: str, tag: str | None = None) -> int:
    def run() -> int:
        from runner.images.oci import import_archive

        for record, names in import_archive(store, Path(file), tag):
            shown = ", ".join(parse_ref(n).familiar() for n in names) or "untagged"
            print(f"Imported {record.id} ({shown})")
        return 0

    return _guard(run)


def export(store: Store, ref: str, output: str) -> int:
    def run() -> int:
        from runner.images.oci import export_archive

        record = export_archive(store, ref, Path(output))
        print(f"Exported {record.id} to {output}")
        return 0

    return _guard(run)
