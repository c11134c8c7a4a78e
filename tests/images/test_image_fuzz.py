"""Property tests: the reference parser and the layer extractor hold their promises on generated input."""

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
from runner.images.reference import parse_ref
from runner.images.tarlayer import apply_layer, clean_path

REF_ALPHABET = "abcXYZ019._-/:@"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=REF_ALPHABET, max_size=40))
def test_parse_ref_refuses_cleanly_or_round_trips(text: str) -> None:
    try:
        ref = parse_ref(text)
    except ImageError as exc:
        assert "\n" not in str(exc)
        return
    assert parse_ref(str(ref)) == ref
    assert ref.repository == ref.repository.lower()


@given(st.lists(st.sampled_from(["a", "b", "..", ".", "", "/"]), max_size=6).map("/".join))
def test_clean_path_never_escapes(name: str) -> None:
    try:
        parts = clean_path(name, "fuzz")
    except ImageError:
        assert name.startswith("/") or ".." in name.split("/")
        return
    assert ".." not in parts and "" not in parts and "." not in parts


NAMES = ["a", "b", "a/b", "a/c", "b/a", "a/b/c", "../x", "a/../../x", "out", "out/x", "out/a/b", "a/out/x"]
Entry = tuple[str, str, str]  # kind, name, link target
entries = st.lists(
    st.tuples(
        st.sampled_from(["file", "dir", "symlink", "hardlink", "whiteout", "opaque", "fifo"]),
        st.sampled_from(NAMES),
        st.sampled_from([*NAMES, "OUTSIDE", "/etc/passwd"]),
    ),
    max_size=8,
)


@pytest.mark.kernel
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries)
def test_extraction_never_writes_outside(tmp_path: Path, steps: list[Entry]) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        base = Path(work)
        outside = base / "outside"
        outside.mkdir()
        builder = TarBuilder().symlink("out", str(outside))  # every later write through "out" is hostile
        for kind, name, target in steps:
            link = str(outside) if target == "OUTSIDE" else target
            if kind == "file":
                builder.file(name, b"data")
            elif kind == "dir":
                builder.dir(name)
            elif kind == "symlink":
                builder.symlink(name, link)
            elif kind == "hardlink":
                builder.hardlink(name, link)
            elif kind == "whiteout":
                parent, _, leaf = name.rpartition("/")
                builder.file(f"{parent}/.wh.{leaf}" if parent else f".wh.{leaf}")
            elif kind == "opaque":
                builder.file(f"{name}/.wh..wh..opq")
            else:
                builder.fifo(name)
        try:
            apply_layer(io.BytesIO(builder.bytes()), base / "layer", base / "tmp")
        except ImageError as exc:
            assert "\n" not in str(exc)
            assert not os.path.lexists(base / "layer")
        assert os.listdir(outside) == []
        assert "trusted.overlay.opaque" not in os.listxattr(outside)
        assert not os.path.lexists(base / "x") and not os.path.lexists(tmp_path / "x")
        assert list((base / "tmp").iterdir()) == []
