"""Manifests, platform choice, auth challenges and credentials: pure logic, no network."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from runner.images.auth import credentials, parse_challenge
from runner.images.errors import ImageError
from runner.images.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    kind,
    parse_index,
    parse_manifest,
    pick_platform,
)
from runner.images.registry import scheme_for

D = ["sha256:" + c * 64 for c in "0123456789abcdef"]


def entry(n: int, os_: str, arch: str, variant: str | None = None, media: str = OCI_MANIFEST) -> Descriptor:
    platform = {"os": os_, "architecture": arch, **({"variant": variant} if variant else {})}
    return Descriptor(media, D[n], 100, platform)


def test_pick_platform() -> None:
    entries = [
        entry(0, "linux", "arm64", "v8"),
        entry(1, "unknown", "unknown", media=OCI_MANIFEST),  # buildkit attestation
        entry(2, "linux", "amd64"),
        entry(3, "windows", "amd64"),
        entry(4, "linux", "arm", "v6"),
        entry(5, "linux", "arm", "v7"),
    ]
    assert pick_platform(entries, "x", ("linux", "amd64", None)).digest == D[2]
    assert pick_platform(entries, "x", ("linux", "arm64", "v8")).digest == D[0]
    assert pick_platform(entries, "x", ("linux", "arm", "v7")).digest == D[5]
    with pytest.raises(ImageError, match=r"no image for linux/s390x \(it offers linux/amd64, linux/arm"):
        pick_platform(entries, "x", ("linux", "s390x", None))
    assert pick_platform([entry(6, "linux", "arm64")], "x", ("linux", "arm64", "v8")).digest == D[6]


def test_manifest_kinds_and_parsing() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "c", "digest": D[1], "size": 10},
        "layers": [{"mediaType": "l", "digest": D[2], "size": 20}],
    }
    manifest = parse_manifest(doc, "x")
    assert manifest.config.digest == D[1] and [x.size for x in manifest.layers] == [20]
    assert kind({"manifests": []}) == OCI_INDEX
    assert kind({"config": {}, "layers": []}) == OCI_MANIFEST
    assert kind({}, DOCKER_LIST) == DOCKER_LIST
    with pytest.raises(ImageError, match="schema 1"):
        kind({"schemaVersion": 1})
    with pytest.raises(ImageError, match="invalid size"):
        parse_manifest({**doc, "layers": [{"digest": D[2], "size": -1}]}, "x")
    with pytest.raises(ImageError, match="invalid digest"):
        parse_manifest({**doc, "layers": [{"digest": "sha256:zz", "size": 1}]}, "x")
    with pytest.raises(ImageError, match="expected an image manifest"):
        parse_manifest({"mediaType": OCI_INDEX, "manifests": []}, "x")
    assert parse_index({"manifests": [entry(3, "linux", "amd64").to_json()]}, "x")[0].digest == D[3]


def test_parse_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/python:pull,push",error="insufficient_scope"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/python:pull,push",
        "error": "insufficient_scope",
    }
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})
    assert parse_challenge('Bearer realm="a\\"b"')[1]["realm"] == 'a"b'


def test_credentials_from_env_then_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert credentials("registry.example") is None
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir(exist_ok=True)
    auth = base64.b64encode(b"hub-user:hub:pass").decode()
    (config_dir / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": auth},
                    "registry.example": {"username": "u", "password": "p"},
                }
            }
        )
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    assert credentials("registry-1.docker.io") == ("hub-user", "hub:pass")
    assert credentials("registry.example") == ("u", "p")
    monkeypatch.setenv(
        "RUNNER_REGISTRY_AUTH", json.dumps({"registry.example": {"username": "e", "password": "q"}})
    )
    assert credentials("registry.example") == ("e", "q")  # the environment wins
    monkeypatch.setenv("RUNNER_REGISTRY_AUTH", "{not json")
    with pytest.raises(ImageError, match="RUNNER_REGISTRY_AUTH is not JSON"):
        credentials("registry.example")


def test_plain_http_only_for_insecure_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    assert scheme_for("localhost:5000") == "http"
    assert scheme_for("127.0.0.1:5000") == "http"
    assert scheme_for("registry-1.docker.io") == "https"
    assert scheme_for("localhost.evil.com") == "https"
    monkeypatch.setenv("RUNNER_INSECURE_REGISTRIES", "reg.lan:5000")
    assert scheme_for("reg.lan:5000") == "http"
    assert scheme_for("reg.lan:6000") == "https"
    assert scheme_for("localhost:5000") == "https"
