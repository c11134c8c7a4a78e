"""Registry authentication against a real docker-registry: Bearer tokens from a realm, and Basic htpasswd."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_merge import image_from_tars
from image_tars import TarBuilder
from image_token_server import TokenService, token_service
from registry_helpers import Registry, start_registry, stop

from runner.images.errors import ImageError
from runner.images.reference import parse_ref
from runner.images.registry import RegistryClient
from runner.images.store import Store
from runner.images.transfer import pull, push
from runner.settings import Paths

pytestmark = pytest.mark.kernel

LAYER = TarBuilder().dir("etc").file("etc/hello", b"from a private registry").bytes()


@pytest.fixture
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, TokenService]]:
    folder = tmp_path_factory.mktemp("token")
    with token_service(folder) as tokens:
        proc, reg = start_registry(folder, tokens.registry_config())
        try:
            yield reg, tokens
        finally:
            stop(proc)


def login(monkeypatch: pytest.MonkeyPatch, host: str, user: str, password: str) -> None:
    monkeypatch.setenv("RUNNER_REGISTRY_AUTH", json.dumps({host: {"username": user, "password": password}}))


def test_bearer_token_flow(
    token_registry: tuple[Registry, TokenService],
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry, tokens = token_registry
    with RegistryClient(registry.host) as client:
        client.ping()  # 401 with a challenge counts as a live v2 registry
    record = image_from_tars(store, [LAYER])
    store.tag(parse_ref("localhost/private:1"), record.id)
    target = f"{registry.host}/team/private:1"
    with pytest.raises(ImageError, match=r"team/private.*no credentials") as anonymous:
        push(target, store, source="localhost/private:1")
    assert "\n" not in str(anonymous.value)

    login(monkeypatch, registry.host, tokens.user, "wrong")
    with pytest.raises(ImageError, match="token refused"):
        push(target, store, source="localhost/private:1")

    login(monkeypatch, registry.host, tokens.user, tokens.password)
    push(target, store, source="localhost/private:1")
    assert any(
        r["authorized"] and "repository:team/private:pull,push" in r["scopes"]  # type: ignore[operator]
        for r in tokens.requests
    )
    other = Store(Paths(tmp_path / "other"))
    pulled = pull(target, other)
    layer = other.layer_path(pulled.layers[0])
    assert (layer / "etc/hello").read_bytes() == b"from a private registry"

    monkeypatch.delenv("RUNNER_REGISTRY_AUTH")  # anonymous pull is allowed by this token service
    third = Store(Paths(tmp_path / "third"))
    assert pull(target, third).id == pulled.id


def bcrypt(password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # bcrypt through libcrypt, for the registry's htpasswd file

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


@pytest.fixture
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    folder = tmp_path_factory.mktemp("basic")
    (folder / "htpasswd").write_text(f"bob:{bcrypt('hunter2')}\n")
    extra = f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {folder / 'htpasswd'}\n"
    proc, reg = start_registry(folder, extra)
    try:
        yield reg
    finally:
        stop(proc)


def test_basic_credentials_from_docker_config(
    basic_registry: Registry, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = image_from_tars(store, [LAYER])
    store.tag(parse_ref("localhost/basic:1"), record.id)
    target = f"{basic_registry.host}/b/img:1"
    with pytest.raises(ImageError, match="authentication required, no credentials for it"):
        push(target, store, source="localhost/basic:1")
    config_dir = tmp_path / "docker-config"
    auth = base64.b64encode(b"bob:hunter2").decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {basic_registry.host: {"auth": auth}}}))
    push(target, store, source="localhost/basic:1")
    other = Store(Paths(tmp_path / "other"))
    assert (other.layer_path(pull(target, other).layers[0]) / "etc/hello").exists()
