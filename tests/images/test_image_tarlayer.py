"""Applying layer tars: OCI whiteout and opaque rules, metadata, hostile archives, corrupt blobs."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import stat
import tarfile
from pathlib import Path

import pytest
from image_tars import TarBuilder

from runner.images.errors import ImageError
from runner.images.tarlayer import OPAQUE_XATTR, apply_layer

pytestmark = pytest.mark.kernel  # root: mknod of whiteouts, chown, trusted.* xattrs


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def apply(tmp_path: Path, blob: bytes, **kw: object) -> Path:
    dest = tmp_path / "layer"
    apply_layer(io.BytesIO(blob), dest, tmp_path / "tmp", **kw)  # type: ignore[arg-type]
    return dest


def is_whiteout(path: Path) -> bool:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


def test_files_dirs_links_and_metadata(tmp_path: Path) -> None:
    blob = (
        TarBuilder()
        .dir("usr", mode=0o750, uid=3, gid=4)
        .dir("usr/bin")
        .file("usr/bin/tool", b"#!/bin/sh\n", mode=0o4755, uid=5, gid=6, mtime=1_500_000_000)
        .file("usr/bin/cap", b"x", xattrs={"user.note": b"hi", "trusted.overlay.redirect": b"/etc"})
        .hardlink("usr/bin/tool2", "usr/bin/tool")
        .symlink("usr/bin/abs", "/etc/passwd")
        .symlink("usr/bin/rel", "../../etc")
        .fifo("usr/pipe")
        .file("deep/a/b/c.txt", b"implicit parents")
        .bytes()
    )
    layer = apply(tmp_path, blob)
    tool = layer / "usr/bin/tool"
    st = os.lstat(tool)
    assert tool.read_bytes() == b"#!/bin/sh\n"
    assert stat.S_IMODE(st.st_mode) == 0o4755 and (st.st_uid, st.st_gid) == (5, 6)
    assert st.st_mtime == 1_500_000_000
    assert os.lstat(layer / "usr/bin/tool2").st_ino == st.st_ino
    assert os.readlink(layer / "usr/bin/abs") == "/etc/passwd"  # kept as-is, resolved in the container
    assert os.readlink(layer / "usr/bin/rel") == "../../etc"
    assert stat.S_ISFIFO(os.lstat(layer / "usr/pipe").st_mode)
    usr = os.lstat(layer / "usr")
    assert stat.S_IMODE(usr.st_mode) == 0o750 and (usr.st_uid, usr.st_gid) == (3, 4)
    assert usr.st_mtime == 1_600_000_000  # set after its children were written
    assert os.getxattr(layer / "usr/bin/cap", "user.note") == b"hi"
    assert "trusted.overlay.redirect" not in os.listxattr(layer / "usr/bin/cap")
    assert (layer / "deep/a/b/c.txt").read_bytes() == b"implicit parents"
    assert stat.S_IMODE(os.lstat(layer).st_mode) == 0o755
    assert list((tmp_path / "tmp").iterdir()) == []


def test_whiteouts_become_overlay_whiteouts(tmp_path: Path) -> None:
    blob = (
        TarBuilder()
        .dir("etc")
        .file("etc/.wh.motd")
        .file(".wh.opt")
        .dir("var/cache")
        .file("var/cache/.wh..wh..opq")
        .file("var/cache/new", b"kept")
        .file(".wh..wh.plnk")  # aufs metadata, ignored
        .bytes()
    )
    layer = apply(tmp_path, blob)
    assert is_whiteout(layer / "etc/motd")
    assert is_whiteout(layer / "opt")
    assert not (layer / "etc/.wh.motd").exists() and not (layer / ".wh.opt").exists()
    assert os.getxattr(layer / "var/cache", OPAQUE_XATTR) == b"y"
    assert (layer / "var/cache/new").read_bytes() == b"kept"  # opaque hides lower layers only
    assert not os.path.lexists(layer / "var/cache/.wh..wh..opq")
    assert sorted(os.listdir(layer)) == ["etc", "opt", "var"]


@pytest.mark.parametrize("whiteout_first", [True, False])
def test_same_layer_entry_beats_its_whiteout(tmp_path: Path, whiteout_first: bool) -> None:
    builder = TarBuilder()
    if whiteout_first:
        builder.file(".wh.a").file("a", b"here").file(".wh.d").file("d/x", b"in d")
    else:
        builder.file("a", b"here").file(".wh.a").file("d/x", b"in d").file(".wh.d")
    layer = apply(tmp_path, builder.bytes())
    assert (layer / "a").read_bytes() == b"here"
    assert (layer / "d/x").read_bytes() == b"in d"


def test_later_entry_replaces_earlier(tmp_path: Path) -> None:
    builder = TarBuilder().dir("x").file("x/in", b"1").file("x", b"now a file")
    blob = builder.file("f", b"1").file("f", b"2").bytes()
    layer = apply(tmp_path, blob)
    assert (layer / "x").read_bytes() == b"now a file"
    assert (layer / "f").read_bytes() == b"2"


@pytest.mark.parametrize("form", ["bytes", "gzip", "zstd"])
def test_compression_detected_by_magic_and_digests_computed(tmp_path: Path, form: str) -> None:
    builder = TarBuilder().file("hello", b"world" * 1000)
    plain = TarBuilder().file("hello", b"world" * 1000).bytes()
    blob = getattr(builder, form)()
    want = {"digest": sha(blob), "size": len(blob), "diff_id": sha(plain)}
    result = apply_layer(io.BytesIO(blob), tmp_path / "l", tmp_path / "tmp", **want)  # type: ignore[arg-type]
    assert result.diff_id == sha(plain)
    assert (result.digest, result.size) == (sha(blob), len(blob))
    assert result.compression == {"bytes": "none", "gzip": "gzip", "zstd": "zstd"}[form]
    assert (tmp_path / "l/hello").read_bytes() == b"world" * 1000


def test_devices_are_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blob = (
        TarBuilder()
        .device("dev/null")
        .device("dev/sda", kind=tarfile.BLKTYPE, major=8, minor=0)
        .device("fake-whiteout", major=0, minor=0)
        .file("ok", b"1")
        .bytes()
    )
    with caplog.at_level(logging.WARNING):
        layer = apply(tmp_path, blob)
    assert sorted(os.listdir(layer)) == ["ok"]
    assert "dev/null" in caplog.text and "dev/sda" in caplog.text and "fake-whiteout" in caplog.text


def hostile_cases(outside: Path) -> dict[str, bytes]:
    return {
        "dotdot": TarBuilder().file("../../etc/x", b"evil").bytes(),
        "dotdot-inner": TarBuilder().dir("a").file("a/../../x", b"evil").bytes(),
        "absolute": TarBuilder().file(str(outside / "x"), b"evil").bytes(),
        "symlink-then-write": TarBuilder().symlink("a", str(outside)).file("a/x", b"evil").bytes(),
        "symlink-rel-then-write": TarBuilder().symlink("a", "../../outside").file("a/x", b"evil").bytes(),
        "symlink-then-dir": TarBuilder().symlink("a", str(outside)).dir("a/sub").bytes(),
        "symlink-then-whiteout": TarBuilder().symlink("a", str(outside)).file("a/.wh.x").bytes(),
        "symlink-then-opaque": TarBuilder().symlink("a", str(outside)).file("a/.wh..wh..opq").bytes(),
        "symlink-then-link": TarBuilder().file("f").symlink("a", str(outside)).hardlink("a/x", "f").bytes(),
        "hardlink-out": TarBuilder().hardlink("x", "../../etc/passwd").bytes(),
        "hardlink-absolute": TarBuilder().hardlink("x", "/etc/passwd").bytes(),
        "hardlink-missing": TarBuilder().hardlink("x", "etc/passwd").bytes(),
        "hardlink-via-symlink": TarBuilder().symlink("a", str(outside)).hardlink("x", "a/secret").bytes(),
        "hardlink-to-dir": TarBuilder().dir("d").hardlink("x", "d").bytes(),
        "file-as-parent": TarBuilder().file("a", b"1").file("a/b", b"2").bytes(),
    }


@pytest.mark.parametrize("case", sorted(hostile_cases(Path("/x"))))
def test_hostile_tars_refused_and_nothing_written(tmp_path: Path, case: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"keep")
    blob = hostile_cases(outside)[case]
    with pytest.raises(ImageError, match="refusing") as info:
        apply(tmp_path, blob)
    assert "\n" not in str(info.value)
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_bytes() == b"keep"
    assert not os.path.lexists(tmp_path / "layer")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_corrupt_blob_refused(tmp_path: Path) -> None:
    good = TarBuilder().file("a", os.urandom(50_000)).gzip()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    with pytest.raises(ImageError) as info:
        apply(tmp_path, bytes(bad), digest=sha(good), size=len(good))
    assert "digest mismatch" in str(info.value) or "not a valid layer tar" in str(info.value)
    assert not os.path.lexists(tmp_path / "layer")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_plain_tar_with_changed_content_fails_on_digest(tmp_path: Path) -> None:
    good = TarBuilder().file("a", b"A" * 4096).bytes()
    bad = good.replace(b"A" * 100, b"B" * 100, 1)
    with pytest.raises(ImageError, match="digest mismatch"):
        apply(tmp_path, bad, digest=sha(good), size=len(good))
    assert not os.path.lexists(tmp_path / "layer")


@pytest.mark.parametrize("form", ["gzip", "zstd", "bytes"])
def test_truncated_blob_refused(tmp_path: Path, form: str) -> None:
    full = getattr(TarBuilder().file("a", os.urandom(100_000)), form)()
    cut = full[: len(full) // 2]
    with pytest.raises(ImageError, match="truncated"):
        apply(tmp_path, cut, digest=sha(full), size=len(full))
    assert not os.path.lexists(tmp_path / "layer")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_truncated_without_descriptor_still_refused(tmp_path: Path) -> None:
    full = TarBuilder().file("a", os.urandom(100_000)).gzip()
    with pytest.raises(ImageError, match="not a valid layer tar"):
        apply(tmp_path, full[: len(full) // 2])
    assert not os.path.lexists(tmp_path / "layer")


def test_longer_than_declared_refused(tmp_path: Path) -> None:
    blob = TarBuilder().file("a", b"x").gzip()
    with pytest.raises(ImageError, match="larger than"):
        apply(tmp_path, blob + b"\0" * 10, digest=sha(blob), size=len(blob))


def test_diff_id_mismatch_refused(tmp_path: Path) -> None:
    blob = TarBuilder().file("a", b"x").gzip()
    with pytest.raises(ImageError, match="image config says"):
        apply(tmp_path, blob, diff_id=sha(b"something else"))
    assert not os.path.lexists(tmp_path / "layer")


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\xfd7zXZ\x00" + b"\0" * 100, "xz or bzip2"),
        (os.urandom(3000).replace(b"\x1f\x8b", b"xx").replace(b"\x28\xb5", b"xx"), "not a valid layer tar"),
        (b"", "not a valid layer tar"),
        (gzip.compress(b"not a tar at all" * 100), "not a valid layer tar"),
    ],
)
def test_garbage_refused(tmp_path: Path, blob: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        apply(tmp_path, blob)
    assert not os.path.lexists(tmp_path / "layer")
