"""The public face of runner.images: image config fields, and ensure_image pulling only when needed."""

from __future__ import annotations

import pytest
from image_merge import image_from_tars
from image_tars import TarBuilder
from registry_helpers import Registry

from runner.images import ImageConfig, ensure_image, image_config, image_layers, parse_ref, push
from runner.images.errors import ImageError
from runner.images.store import Store
from runner.settings import Paths


def test_image_config_from_json() -> None:
    config = ImageConfig.from_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/bin", "A=1", "A=2", "EMPTY="],
                "WorkingDir": "/app",
                "User": "1000:1000",
                "Entrypoint": ["/entry"],
                "Cmd": "run",
                "Labels": {"k": "v"},
            },
        }
    )
    assert config.env_dict() == {"PATH": "/usr/bin", "A": "2", "EMPTY": ""}
    assert (config.workdir, config.user, config.entrypoint, config.cmd) == (
        "/app",
        "1000:1000",
        ["/entry"],
        ["run"],
    )
    assert config.labels == {"k": "v"} and config.architecture == "amd64"
    assert ImageConfig.from_json({}) == ImageConfig()
    assert ImageConfig.from_json({"config": None}).cmd == []


@pytest.mark.kernel
def test_ensure_image_pulls_only_when_missing(registry: Registry, store: Store) -> None:
    record = image_from_tars(store, [TarBuilder().file("a", b"1").bytes()], {"Env": ["X=1"], "Cmd": ["/a"]})
    store.tag(parse_ref("localhost/src:1"), record.id)
    ref = f"{registry.host}/api/img:1"
    push(ref, store, source="localhost/src:1")
    other = Store(Paths(store.paths.home.parent / "other"))
    with pytest.raises(ImageError, match="no image"):
        other.resolve(ref)
    pulled = ensure_image(other, ref)
    assert image_config(other, ref).env == ["X=1"]
    assert len(image_layers(other, ref)) == 1
    created = other.images()[0].created
    assert ensure_image(other, ref).id == pulled.id and other.images()[0].created == created
    with pytest.raises(ImageError, match="lowercase"):
        ensure_image(other, "Bad/Ref")
