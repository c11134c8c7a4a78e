"""Archives: export to an OCI layout tar and import it back; docker-save tarballs; bad archives refused."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from image_merge import image_from_tars, overlay_view
from image_tars import TarBuilder

from runner.images import image_config, image_layers
from runner.images.digest import sha256_bytes
from runner.images.errors import ImageError
from runner.images.oci import export_archive, import_archive
from runner.images.reference import parse_ref
from runner.images.store import Store
from runner.settings import Paths

pytestmark = pytest.mark.kernel

BASE = TarBuilder().dir("etc").file("etc/motd", b"hello").dir("data").file("data/old", b"1").bytes()
TOP = TarBuilder().file("etc/.wh.motd").dir("data").file("data/.wh..wh..opq").file("data/new", b"2").bytes()


def archive_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def check_merged(store: Store, ref: str, tmp: Path) -> None:
    with overlay_view(image_layers(store, ref), tmp) as root:
        assert not (root / "etc/motd").exists()
        assert sorted(os.listdir(root / "data")) == ["new"]
        assert (root / "data/new").read_bytes() == b"2"


def test_export_then_import_round_trip(store: Store, tmp_path: Path) -> None:
    record = image_from_tars(store, [BASE, TOP])
    store.tag(parse_ref("localhost/demo:1"), record.id)
    out = tmp_path / "out" / "demo.tar"
    export_archive(store, "localhost/demo:1", out)
    files = archive_members(out)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    (entry,) = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "1"
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert sha256_bytes(data) == "sha256:" + name.rpartition("/")[2]
    manifest = json.loads(files["blobs/sha256/" + entry["digest"].partition(":")[2]])
    assert len(manifest["layers"]) == 2 and all(x["mediaType"].endswith("+gzip") for x in manifest["layers"])

    other = Store(Paths(tmp_path / "other-home"))
    ((imported, names),) = import_archive(other, out)
    assert names == ["localhost/demo:1"]
    assert image_config(other, "localhost/demo:1").env == ["PATH=/bin"]
    assert image_config(other, "localhost/demo:1").workdir == "/w"
    check_merged(other, "localhost/demo:1", tmp_path)
    again = Store(Paths(tmp_path / "third-home"))
    extracted = tmp_path / "layout-dir"
    with tarfile.open(out) as tar:
        tar.extractall(extracted, filter="data")
    ((from_dir, _),) = import_archive(again, extracted, tag="localhost/fromdir:x")
    assert from_dir.id == imported.id
    check_merged(again, "localhost/fromdir:x", tmp_path)


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def docker_save(tmp_path: Path, layers: list[bytes], *, names: list[str] | None = None) -> Path:
    rootfs = {"type": "layers", "diff_ids": [sha256_bytes(x) for x in layers]}
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": rootfs}).encode()
    config_name = sha256_bytes(config).partition(":")[2] + ".json"
    layer_names = names or [f"{i}/layer.tar" for i in range(len(layers))]
    manifest = [{"Config": config_name, "RepoTags": ["demo:saved"], "Layers": layer_names}]
    members = {"manifest.json": json.dumps(manifest).encode(), config_name: config}
    members.update(zip(layer_names, layers, strict=True))
    return write_tar(tmp_path / "saved.tar", members)


def test_docker_save_tarball_imported(store: Store, tmp_path: Path) -> None:
    ((record, names),) = import_archive(store, docker_save(tmp_path, [BASE, TOP]))
    assert names == ["registry-1.docker.io/library/demo:saved"]
    assert store.resolve("demo:saved").id == record.id
    check_merged(store, "demo:saved", tmp_path)


def test_docker_save_with_escaping_layer_name_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="climbs out"):
        import_archive(store, docker_save(tmp_path, [BASE], names=["../../etc/passwd"]))
    assert store.images() == [] and store.all_layers() == []


def test_docker_save_with_wrong_layer_refused(store: Store, tmp_path: Path) -> None:
    path = docker_save(tmp_path, [BASE, TOP])
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    members["1/layer.tar"] = TarBuilder().file("evil", b"swapped").bytes()
    write_tar(path, members)
    with pytest.raises(ImageError, match="image config says"):
        import_archive(store, path)
    assert store.images() == []
    assert [x.diff_id for x in store.all_layers()] == [sha256_bytes(BASE)]  # the good layer may stay, whole


def test_corrupt_blob_in_oci_archive_refused(store: Store, tmp_path: Path) -> None:
    image_from_tars(store, [BASE])
    store.tag(parse_ref("localhost/c:1"), store.images()[0].id)
    out = tmp_path / "c.tar"
    export_archive(store, "localhost/c:1", out)
    files = archive_members(out)
    manifest_digest = json.loads(files["index.json"])["manifests"][0]["digest"]
    manifest = json.loads(files["blobs/sha256/" + manifest_digest.partition(":")[2]])
    key = "blobs/sha256/" + manifest["layers"][0]["digest"].partition(":")[2]
    files[key] = files[key][:-8] + b"\0" * 8
    write_tar(out, files)
    fresh = Store(Paths(tmp_path / "fresh"))
    with pytest.raises(ImageError, match=r"digest mismatch|not a valid layer tar"):
        import_archive(fresh, out)
    assert fresh.images() == [] and fresh.all_layers() == []
    assert list(fresh.tmp.iterdir()) == []


def test_not_an_archive(store: Store, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"definitely not a tar" * 100)
    with pytest.raises(ImageError, match="not a readable image archive"):
        import_archive(store, junk)
    with pytest.raises(ImageError, match="no such file"):
        import_archive(store, tmp_path / "missing.tar")
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w"):
        pass
    with pytest.raises(ImageError, match="neither an OCI image layout nor"):
        import_archive(store, empty)


def test_export_unknown_image_writes_nothing(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no image"):
        export_archive(store, "localhost/none:1", tmp_path / "x.tar")
    assert not (tmp_path / "x.tar").exists()
