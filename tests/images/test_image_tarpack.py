"""Layer directory -> tar -> directory: whiteouts and opaque dirs survive, and the tar is deterministic."""

from __future__ import annotations

import io
import os
import stat
import struct
import tarfile
from pathlib import Path
from typing import Any

import pytest
from image_tars import TarBuilder

from runner.images.digest import sha256_bytes, sha256_file
from runner.images.tarlayer import apply_layer
from runner.images.tarpack import layer_to_tar, pack_layer

pytestmark = pytest.mark.kernel


def snapshot(root: Path) -> dict[str, Any]:
    """Everything the engine would see of a layer, path by path."""
    found: dict[str, Any] = {}
    inodes: dict[int, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted([*dirnames, *filenames]):
            path = Path(dirpath) / name
            st = os.lstat(path)
            rel = str(path.relative_to(root))
            is_dir = stat.S_ISDIR(st.st_mode)
            entry: dict[str, Any] = {
                "mode": st.st_mode,
                "owner": (st.st_uid, st.st_gid),
                "rdev": st.st_rdev,
                "link": inodes.setdefault(st.st_ino, rel) if st.st_nlink > 1 and not is_dir else None,
            }
            if not stat.S_ISCHR(st.st_mode):
                entry["mtime"] = int(st.st_mtime)
            if stat.S_ISREG(st.st_mode):
                entry["data"] = path.read_bytes()
            if stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(path)
            else:
                entry["xattrs"] = {a: os.getxattr(path, a) for a in sorted(os.listxattr(path))}
            found[rel] = entry
    return found


def layer_from(tmp_path: Path, name: str, blob: bytes) -> Path:
    dest = tmp_path / name
    apply_layer(io.BytesIO(blob), dest, tmp_path / "tmp")
    return dest


CAP_NET_RAW = struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0)  # vfs_cap_data v2, effective
SAMPLE = (
    TarBuilder()
    .dir("etc", mode=0o755)
    .file("etc/.wh.shadow")
    .file("etc/conf", b"k=v\n", mode=0o600, uid=7, gid=8, mtime=1_234_567_890)
    .dir("opt/app")
    .file("opt/app/.wh..wh..opq")
    .file("opt/app/main", b"\x7fELF", mode=0o755, xattrs={"security.capability": CAP_NET_RAW})
    .hardlink("opt/app/main2", "opt/app/main")
    .symlink("opt/latest", "app/main")
    .fifo("run-fifo")
    .file(".wh.home")
)


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    first = layer_from(tmp_path, "first", SAMPLE.bytes())
    tar_bytes = layer_to_tar(first)
    second = layer_from(tmp_path, "second", tar_bytes)
    assert snapshot(first) == snapshot(second)
    assert os.getxattr(second / "opt/app/main", "security.capability") == CAP_NET_RAW
    assert os.lstat(second / "opt/app/main").st_ino == os.lstat(second / "opt/app/main2").st_ino
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        names = tar.getnames()
    assert "etc/.wh.shadow" in names and ".wh.home" in names and "opt/app/.wh..wh..opq" in names
    assert names.index("opt/app") < names.index("opt/app/.wh..wh..opq") < names.index("opt/app/main")


def test_tar_is_deterministic_and_pinnable(tmp_path: Path) -> None:
    layer = layer_from(tmp_path, "l", SAMPLE.bytes())
    assert layer_to_tar(layer) == layer_to_tar(layer)
    with tarfile.open(fileobj=io.BytesIO(layer_to_tar(layer, mtime=0))) as pinned:
        members = pinned.getmembers()
    assert {m.mtime for m in members} == {0}
    assert {m.uname for m in members} == {""}


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_pack_layer_reports_true_digests(tmp_path: Path, compression: str) -> None:
    layer = layer_from(tmp_path, "l", SAMPLE.bytes())
    blob = tmp_path / "blob"
    packed = pack_layer(layer, blob, compression=compression)  # type: ignore[arg-type]
    assert (packed.digest, packed.size) == sha256_file(blob)
    assert packed.diff_id == sha256_bytes(layer_to_tar(layer))
    with open(blob, "rb") as f:
        again = apply_layer(f, tmp_path / "again", tmp_path / "tmp", digest=packed.digest)
    assert again.diff_id == packed.diff_id
    assert snapshot(layer) == snapshot(tmp_path / "again")
    assert packed.media_type.endswith({"gzip": "+gzip", "zstd": "+zstd", "none": ".tar"}[compression])
    second = pack_layer(layer, tmp_path / "blob2", compression=compression)  # type: ignore[arg-type]
    assert second == packed  # same directory, same bytes: a push can skip what the registry has
