"""Reference parsing: the normalization table Docker applies, and the references it refuses."""

from __future__ import annotations

import pytest

from runner.images.errors import ImageError
from runner.images.reference import ImageRef, is_host, parse_ref, validate_digest

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("python", "registry-1.docker.io", "library/python", "latest", None),
        ("python:3.12", "registry-1.docker.io", "library/python", "3.12", None),
        ("library/python:3.12-slim", "registry-1.docker.io", "library/python", "3.12-slim", None),
        ("docker.io/python", "registry-1.docker.io", "library/python", "latest", None),
        ("index.docker.io/library/python:3", "registry-1.docker.io", "library/python", "3", None),
        ("bitnami/redis:7.2", "registry-1.docker.io", "bitnami/redis", "7.2", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/a/b:tag", "localhost:5000", "a/b", "tag", None),
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000", "team/app", "latest", None),
        ("ghcr.io/owner/repo/sub:v1.0", "ghcr.io", "owner/repo/sub", "v1.0", None),
        ("quay.io/a_b/c__d/e-f--g.h", "quay.io", "a_b/c__d/e-f--g.h", "latest", None),
        ("Registry.Example/app", "Registry.Example", "app", "latest", None),
        ("MyHost/app", "MyHost", "app", "latest", None),
        ("[::1]:5000/app:1", "[::1]:5000", "app", "1", None),
        (f"python@{D}", "registry-1.docker.io", "library/python", None, D),
        (f"python:3.12@{D}", "registry-1.docker.io", "library/python", "3.12", D),
        (f"localhost:5000/app@{D}", "localhost:5000", "app", None, D),
        ("a" * 50 + ":" + "t" * 128, "registry-1.docker.io", "library/" + "a" * 50, "t" * 128, None),
    ],
)
def test_normalizes_like_docker(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    assert parse_ref(text) == ImageRef(registry, repository, tag, digest)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("Python", "lowercase"),
        ("library/Python:3", "lowercase"),
        ("python:", "invalid tag"),
        ("python:-x", "invalid tag"),
        ("python:" + "t" * 129, "invalid tag"),
        ("python@sha256:abc", "64"),
        ("python@md5:" + "a" * 32, "unsupported digest algorithm"),
        (f"python@{D.upper()}", "invalid digest"),
        ("a//b", "bad name component"),
        ("a/b/", "bad name component"),
        ("-a", "bad name component"),
        ("a..b", "bad name component"),
        ("a b", "whitespace"),
        ("localhost:5000/", "bad name component"),
        (":tag", "name is missing"),
        ("exa_mple.com/app", "invalid registry"),
        ("host", "host image"),
        ("x" * 300, "longer than 255"),
    ],
)
def test_refuses_what_docker_refuses(text: str, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        parse_ref(text)


def test_string_forms() -> None:
    ref = parse_ref("python:3.12")
    assert str(ref) == "registry-1.docker.io/library/python:3.12"
    assert ref.familiar() == "python:3.12"
    assert ref.reference == "3.12"
    assert parse_ref("localhost:5000/a/b").familiar() == "localhost:5000/a/b:latest"
    pinned = parse_ref(f"python:3@{D}")
    assert pinned.reference == D
    assert str(pinned) == f"registry-1.docker.io/library/python:3@{D}"
    assert parse_ref(str(pinned)) == pinned  # the full form parses back to itself


def test_host_is_not_a_registry_reference() -> None:
    assert is_host("host") and is_host(" host ")
    assert not is_host("host:1") and not is_host("localhost")
    assert parse_ref("host:1").repository == "library/host"


def test_validate_digest() -> None:
    assert validate_digest(D) == D
    assert validate_digest("sha512:" + "0" * 128).startswith("sha512:")
    with pytest.raises(ImageError):
        validate_digest("sha256:" + "g" * 64)


def test_errors_are_one_line() -> None:
    assert str(ImageError("registry said:\n  denied\r\n\tgo away")) == "registry said: denied go away"
