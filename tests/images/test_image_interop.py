"""Interop with independent tools: buildah builds and pushes, we pull; we push, skopeo and umoci read.

Everything is real: a `docker-registry` on a loopback port, buildah with its own vfs storage, skopeo,
umoci, and the kernel's overlayfs to look at an image the way the engine will mount it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
from image_merge import image_from_tars, overlay_view
from image_tars import TarBuilder
from registry_helpers import Registry, Run, need, run, start_registry, stop

from runner.images import image_config, image_layers
from runner.images.errors import ImageError
from runner.images.ingest import LayerSource, ingest
from runner.images.oci import export_archive, import_archive
from runner.images.reference import parse_ref
from runner.images.registry import RegistryClient
from runner.images.store import Store
from runner.images.transfer import pull, push
from runner.settings import Paths

pytestmark = pytest.mark.kernel

SETUP = (
    "/bin/busybox mkdir -p /etc /data/sub /keep && /bin/busybox ln -s busybox /bin/sh && "
    "echo hello > /etc/motd && echo old > /data/sub/old && echo k > /keep/k"
)
CHANGE = "rm /etc/motd && rm -rf /data && mkdir /data && echo new > /data/new"


@dataclass
class Built:
    base: str
    top: str


@pytest.fixture(scope="module")
def built(buildah: Run) -> Built:
    """A two-layer image: busybox and some files, then a layer that deletes a file and replaces a dir."""
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        pytest.fail("/bin/busybox is missing: apt-get install -y busybox-static")
    ctr = buildah("from", "scratch").stdout.strip()
    buildah("copy", ctr, str(busybox), "/bin/busybox")
    buildah("run", ctr, "--", "/bin/busybox", "sh", "-c", SETUP)
    buildah("config", "--env", "PATH=/bin", "--cmd", "/bin/sh", "--workingdir", "/keep", ctr)
    buildah("commit", "-q", ctr, "localhost/test-base")
    ctr2 = buildah("from", "localhost/test-base").stdout.strip()
    buildah("run", ctr2, "--", "/bin/busybox", "sh", "-c", CHANGE)
    buildah("commit", "-q", ctr2, "localhost/test-top")
    return Built("localhost/test-base", "localhost/test-top")


def buildah_push(buildah: Run, image: str, registry: Registry, name: str, *extra: str) -> None:
    buildah("push", "--tls-verify=false", *extra, image, f"docker://{registry.host}/{name}")


def check_view(store: Store, ref: str, tmp: Path) -> None:
    """The image as the engine would mount it: the change layer's delete and replaced dir are visible."""
    with overlay_view(image_layers(store, ref), tmp) as root:
        assert not os.path.lexists(root / "etc/motd")
        assert sorted(os.listdir(root / "data")) == ["new"]
        assert (root / "data/new").read_text() == "new\n"
        assert (root / "keep/k").read_text() == "k\n"
        assert os.readlink(root / "bin/sh") == "busybox"
        assert stat.S_IMODE(os.stat(root / "bin/busybox").st_mode) & 0o111
        out = subprocess.run(
            ["chroot", str(root), "/bin/sh", "-c", "echo ran; ls /data"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert out.stdout.split() == ["ran", "new"]


def test_pull_image_built_and_pushed_by_buildah(
    buildah: Run, built: Built, module_registry: Registry, store: Store, tmp_path: Path
) -> None:
    buildah_push(buildah, built.top, module_registry, "test/img:oci")
    ref = f"{module_registry.host}/test/img:oci"
    record = pull(ref, store)
    assert len(record.layers) == 2
    check_view(store, ref, tmp_path)
    config = image_config(store, ref)
    assert config.env == ["PATH=/bin"] and config.cmd == ["/bin/sh"] and config.workdir == "/keep"
    raw = run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout
    assert record.manifest_digest == "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    created = [store.layer(x).created for x in record.layers]  # type: ignore[union-attr]
    again = pull(ref, store)  # everything is in the store: nothing is fetched or applied again
    assert again.id == record.id
    assert [store.layer(x).created for x in again.layers] == created  # type: ignore[union-attr]


def test_pull_docker_format_through_a_manifest_list(
    buildah: Run, built: Built, module_registry: Registry, store: Store, tmp_path: Path
) -> None:
    listed = "localhost/test-list"
    buildah("manifest", "rm", listed, check=False)
    buildah("manifest", "create", listed)
    buildah("manifest", "add", "--arch", "arm64", "--variant", "v8", listed, built.base)  # a decoy platform
    buildah("manifest", "add", "--arch", "amd64", "--os", "linux", listed, built.top)
    buildah(
        "manifest",
        "push",
        "--all",
        "--format",
        "v2s2",
        "--tls-verify=false",
        listed,
        f"docker://{module_registry.host}/test/list:1",
    )
    ref = f"{module_registry.host}/test/list:1"
    raw_bytes = run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout
    raw = json.loads(raw_bytes)
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    record = pull(ref, store)
    assert len(record.layers) == 2  # the amd64 entry, not the one-layer arm64 decoy
    check_view(store, ref, tmp_path)
    list_digest = "sha256:" + hashlib.sha256(raw_bytes.encode()).hexdigest()
    by_digest = f"{module_registry.host}/test/list@{list_digest}"
    assert store.resolve(by_digest).id == record.id  # the index digest finds it without a pull


def test_our_push_read_back_by_skopeo_and_umoci(
    module_registry: Registry, store: Store, tmp_path: Path
) -> None:
    need("skopeo")
    need("umoci")
    base = (
        TarBuilder()
        .dir("etc")
        .file("etc/motd", b"hello")
        .dir("data")
        .file("data/old", os.urandom(300_000))  # large enough to go up in several chunks
        .file("bin/tool", b"#!/bin/sh\n", mode=0o755)
        .bytes()
    )
    top = (
        TarBuilder()
        .file("etc/.wh.motd")
        .dir("data")
        .file("data/.wh..wh..opq")
        .file("data/new", b"new")
        .bytes()
    )
    record = image_from_tars(store, [base, top])
    store.tag(parse_ref("localhost/mine:1"), record.id)
    target = f"{module_registry.host}/ours/img:1"
    with RegistryClient(module_registry.host, chunk_size=64 * 1024) as client:
        digest = push(target, store, source="localhost/mine:1", client=client)
    layout = tmp_path / "layout"
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{target}", f"oci:{layout}:latest")
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", f"{layout}:latest", str(bundle))
    rootfs = bundle / "rootfs"
    assert not os.path.lexists(rootfs / "etc/motd")
    assert sorted(os.listdir(rootfs / "data")) == ["new"]
    assert stat.S_IMODE(os.stat(rootfs / "bin/tool").st_mode) == 0o755
    # and our own client reads it back the same
    other = Store(Paths(tmp_path / "other"))
    pulled = pull(target, other)
    with overlay_view(image_layers(other, target), tmp_path) as root:
        assert sorted(os.listdir(root / "data")) == ["new"] and not os.path.lexists(root / "etc/motd")
    assert pulled.config["config"]["Env"] == ["PATH=/bin"]
    assert push(target, store, source="localhost/mine:1") == digest  # nothing new: same manifest


def test_push_of_a_pulled_image_mounts_its_original_blobs(
    buildah: Run, built: Built, module_registry: Registry, store: Store
) -> None:
    buildah_push(buildah, built.top, module_registry, "test/src:1")
    source = f"{module_registry.host}/test/src:1"
    record = pull(source, store)
    target = f"{module_registry.host}/elsewhere/copy:1"
    push(target, store, source=source)
    before = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{source}").stdout)
    after = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{target}").stdout)
    assert [x["digest"] for x in after["layers"]] == [x["digest"] for x in before["layers"]]
    assert after["config"]["digest"] == before["config"]["digest"] == record.id
    for layer_id in record.layers:
        blobs = store.layer(layer_id).blobs  # type: ignore[union-attr]
        assert any(f"{module_registry.host}/elsewhere/copy" in b.get("repos", []) for b in blobs.values())


def test_archives_written_by_skopeo_imported(
    buildah: Run, built: Built, module_registry: Registry, store: Store, tmp_path: Path
) -> None:
    buildah_push(buildah, built.top, module_registry, "test/arch:1")
    src = f"docker://{module_registry.host}/test/arch:1"
    docker_tar = tmp_path / "docker.tar"
    run("skopeo", "copy", "--src-tls-verify=false", src, f"docker-archive:{docker_tar}:saved/img:1")
    ((record, names),) = import_archive(store, docker_tar)
    assert names == ["registry-1.docker.io/saved/img:1"]
    check_view(store, "saved/img:1", tmp_path)
    oci_tar = tmp_path / "oci.tar"
    run("skopeo", "copy", "--src-tls-verify=false", src, f"oci-archive:{oci_tar}:v1")
    other = Store(Paths(tmp_path / "other"))
    ((from_oci, _),) = import_archive(other, oci_tar, tag="localhost/from-oci:1")
    check_view(other, "localhost/from-oci:1", tmp_path)
    assert from_oci.config["rootfs"] == record.config["rootfs"]


@pytest.fixture
def own_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    proc, reg = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield reg
    finally:
        stop(proc)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_blob_in_registry_refused(
    buildah: Run, built: Built, own_registry: Registry, store: Store, damage: str
) -> None:
    buildah_push(buildah, built.top, own_registry, "test/bad:1")
    ref = f"{own_registry.host}/test/bad:1"
    manifest = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout)
    biggest = max(manifest["layers"], key=lambda x: x["size"])
    data = own_registry.blob_data(biggest["digest"])
    blob = bytearray(data.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0x55
        data.write_bytes(bytes(blob))
    else:
        data.write_bytes(bytes(blob[: len(blob) // 3]))
    with pytest.raises(ImageError) as info:
        pull(ref, store)
    message = str(info.value)
    assert biggest["digest"] in message and "\n" not in message
    assert ("digest mismatch" if damage == "flip" else "truncated") in message
    assert store.images() == [] and store.tags() == {}
    assert all(biggest["digest"] not in layer.blobs for layer in store.all_layers())
    assert list(store.tmp.iterdir()) == []


PULL_SCRIPT = """
import sys
from pathlib import Path
from runner.images.store import Store
from runner.images.transfer import pull
from runner.settings import Paths
print(pull(sys.argv[2], Store(Paths(Path(sys.argv[1])))).id)
"""


def test_concurrent_pulls_share_the_work(
    buildah: Run, built: Built, module_registry: Registry, paths: Paths
) -> None:
    buildah_push(buildah, built.top, module_registry, "test/race:1")
    ref = f"{module_registry.host}/test/race:1"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PULL_SCRIPT, str(paths.home), ref],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in results]
    assert len({out.strip() for out, _ in results}) == 1
    store = Store(paths)
    assert len(store.images()) == 1
    assert sorted(p.name for p in paths.layers.iterdir() if p.is_dir()) == sorted(
        store.layer_path(x).name for x in store.images()[0].layers
    )
    assert list(paths.tmp.iterdir()) == []


def test_pull_zstd_layers(
    buildah: Run, built: Built, own_registry: Registry, store: Store, tmp_path: Path
) -> None:
    buildah_push(
        buildah, built.top, own_registry, "test/zstd:1", "--format", "oci", "--compression-format", "zstd"
    )
    ref = f"{own_registry.host}/test/zstd:1"
    manifest = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout)
    assert {x["mediaType"] for x in manifest["layers"]} == {"application/vnd.oci.image.layer.v1.tar+zstd"}
    pull(ref, store)
    check_view(store, ref, tmp_path)


def test_https_unless_the_registry_is_listed_insecure(
    module_registry: Registry, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_INSECURE_REGISTRIES", "registry.internal")
    with pytest.raises(ImageError) as info:
        pull(f"{module_registry.host}/test/img:oci", store)  # a plain-HTTP registry, spoken to over TLS
    assert str(info.value).startswith(f"{module_registry.host}: GET") and "\n" not in str(info.value)
    assert store.images() == []


def test_push_of_a_derived_image_mounts_the_base_and_uploads_the_rest(
    buildah: Run, built: Built, module_registry: Registry, store: Store, tmp_path: Path
) -> None:
    buildah_push(buildah, built.top, module_registry, "test/base:1")
    source = f"{module_registry.host}/test/base:1"
    base = pull(source, store)
    extra = TarBuilder().dir("app").file("app/run", b"#!/bin/sh\necho app\n", mode=0o755).bytes()
    config = json.loads(json.dumps(base.config))
    config["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(extra).hexdigest())

    def never() -> contextlib.AbstractContextManager[BinaryIO]:
        raise AssertionError("a layer already in the store was fetched again")

    sources = [LayerSource(never, None) for _ in base.layers]
    sources.append(LayerSource(lambda: contextlib.nullcontext(io.BytesIO(extra)), None))  # type: ignore[arg-type,return-value]
    derived = ingest(store, json.dumps(config).encode(), sources, what="derived")
    store.tag(parse_ref("localhost/derived:1"), derived.id)
    target = f"{module_registry.host}/elsewhere/derived:1"
    push(target, store, source="localhost/derived:1")
    before = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{source}").stdout)
    after = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{target}").stdout)
    assert [x["digest"] for x in after["layers"][:2]] == [x["digest"] for x in before["layers"]]
    assert len(after["layers"]) == 3
    layout, bundle = tmp_path / "layout", tmp_path / "bundle"
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{target}", f"oci:{layout}:latest")
    run("umoci", "unpack", "--image", f"{layout}:latest", str(bundle))
    assert (bundle / "rootfs/app/run").read_bytes().startswith(b"#!/bin/sh")
    assert sorted(os.listdir(bundle / "rootfs/data")) == ["new"] and not (bundle / "rootfs/etc/motd").exists()


def test_our_export_read_by_umoci_and_skopeo_and_theirs_by_us(
    buildah: Run, built: Built, module_registry: Registry, store: Store, tmp_path: Path
) -> None:
    buildah_push(buildah, built.top, module_registry, "test/export:1")
    ref = f"{module_registry.host}/test/export:1"
    pull(ref, store)
    out = tmp_path / "export.tar"
    export_archive(store, ref, out)
    layout = tmp_path / "layout"
    layout.mkdir()
    with tarfile.open(out) as tar:
        tar.extractall(layout, filter="data")
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", f"{layout}:1", str(bundle))
    assert sorted(os.listdir(bundle / "rootfs/data")) == ["new"] and not (bundle / "rootfs/etc/motd").exists()
    inspected = json.loads(run("skopeo", "inspect", f"oci-archive:{out}").stdout)
    assert inspected["Env"] == ["PATH=/bin"] and len(inspected["Layers"]) == 2
    skopeo_dir = tmp_path / "skopeo-layout"
    run("skopeo", "copy", f"oci-archive:{out}", f"oci:{skopeo_dir}:copied")
    other = Store(Paths(tmp_path / "other"))
    ((record, names),) = import_archive(other, skopeo_dir, tag="localhost/copied:1")
    assert names == ["localhost/copied:1"] and record.config["config"]["Env"] == ["PATH=/bin"]
    check_view(other, "localhost/copied:1", tmp_path)
