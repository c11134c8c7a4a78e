"""Where the shared webhook fixtures live, and a skip with a reason when this checkout has none."""

from __future__ import annotations

from pathlib import Path

import pytest

WEBHOOKS = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "webhooks"


def shared_payload(relpath: str) -> bytes:
    """The exact bytes of `../shared/fixtures/webhooks/<relpath>`; skips when the shared tree is absent."""
    path = WEBHOOKS / relpath
    if not WEBHOOKS.is_dir():
        pytest.skip(f"shared webhook fixtures not present at {WEBHOOKS} (they live beside the repository)")
    return path.read_bytes()


def all_shared() -> list[str]:
    """Every stored payload, as `forge/name.json`, so a new fixture file is tested without editing tests."""
    if not WEBHOOKS.is_dir():
        return []
    return sorted(str(p.relative_to(WEBHOOKS)) for p in WEBHOOKS.glob("*/*.json"))
