"""Fuzzing the layer extractor with damaged bytes: a truncated, bit-flipped or foreign blob (plain,
gzip or zstd) is either applied or refused with one ImageError line, never another exception, and a
refusal leaves neither the destination nor a work directory behind.

test_image_fuzz.py generates hostile but well-formed tars (escapes through links); this one breaks the
container format itself: headers, checksums, sizes, compression frames.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from image_tars import TarBuilder

from runner.images.errors import ImageError
from runner.images.tarlayer import apply_layer

pytestmark = pytest.mark.kernel  # extraction sets owners and device numbers: root


def layer() -> TarBuilder:
    builder = TarBuilder().dir("etc").file("etc/os-release", b"ID=fuzz\n" * 40).symlink("lib", "usr/lib")
    builder.dir("usr").dir("usr/lib").file("usr/lib/libx.so", bytes(range(256)) * 8).hardlink(
        "l2", "etc/os-release"
    )
    return builder.file(".wh.gone").file("usr/.wh..wh..opq").fifo("run.fifo")


PLAIN = layer().bytes()
COMPRESSED = {"plain": PLAIN, "gzip": layer().gzip(), "zstd": layer().zstd()}

damage = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 1 << 16), st.integers(0, 255)),
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(1, 255)),
    st.tuples(st.just("splice"), st.integers(0, 1 << 16), st.integers(0, 255)),
)


def damaged(blob: bytes, hits: list[tuple[str, int, int]]) -> bytes:
    data = bytearray(blob)
    for kind, where, value in hits:
        if not data:
            break
        at = where % len(data)
        if kind == "truncate":
            del data[at:]
        elif kind == "flip":
            data[at] ^= value
        else:
            data[at:at] = bytes([value]) * 7
    return bytes(data)


def applied_or_refused(tmp_path: Path, blob: bytes) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        base = Path(work)
        try:
            apply_layer(io.BytesIO(blob), base / "layer", base / "tmp")
        except ImageError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("layer")
            assert not os.path.lexists(base / "layer")
        assert list((base / "tmp").iterdir()) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(COMPRESSED)), st.lists(damage, min_size=1, max_size=3))
def test_a_damaged_layer_is_applied_or_refused_in_one_line(tmp_path: Path, kind: str, hits) -> None:
    applied_or_refused(tmp_path, damaged(COMPRESSED[kind], hits))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.binary(max_size=2048)
    | st.binary(max_size=64).map(lambda b: b"\x1f\x8b" + b)
    | st.binary(max_size=64).map(lambda b: b"\x28\xb5\x2f\xfd" + b)
)
def test_foreign_bytes_are_refused_in_one_line(tmp_path: Path, blob: bytes) -> None:
    applied_or_refused(tmp_path, blob)
