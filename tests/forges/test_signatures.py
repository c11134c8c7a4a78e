"""Webhook signatures: the known-answer vectors of SOURCES.md, forgeries, and missing headers."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from forge_fixtures import shared_payload

from runner.forges import verify_signature

GITHUB_DOC_VECTOR = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
GITHUB_FILE_VECTOR = "sha256=e3bfe744d4e2e29ed990bde8acfb8255ca51ef65f99657767989fb6349f32957"
GITEA_FILE_VECTOR = "60fe446c74fa0cb9474f98cc557db79e10c7aaf22cf324ad65239600b9e4d915"
GITEA_SECRET = "IsWishesWereHorsesWedAllBeEatingSteak!"


def test_github_documented_vector() -> None:
    headers = {"X-Hub-Signature-256": GITHUB_DOC_VECTOR}
    assert verify_signature("github", "It's a Secret to Everybody", b"Hello, World!", headers)
    assert not verify_signature("github", "It's a Secret to Everybody", b"Hello, World?", headers)
    assert not verify_signature("github", "it's a secret to everybody", b"Hello, World!", headers)


def test_github_vector_over_stored_payload() -> None:
    body = shared_payload("github/push-branch-update.json")
    assert verify_signature("github", "topsecret", body, {"X-Hub-Signature-256": GITHUB_FILE_VECTOR})
    # header names are case-insensitive, as HTTP says
    assert verify_signature("github", "topsecret", body, {"x-hub-signature-256": GITHUB_FILE_VECTOR})
    assert verify_signature("github", "topsecret", body, {"X-Hub-Signature-256": GITHUB_FILE_VECTOR.upper()})
    assert not verify_signature(
        "github", "topsecret", body + b"\n", {"X-Hub-Signature-256": GITHUB_FILE_VECTOR}
    )


def test_github_legacy_sha1_alone_is_refused() -> None:
    body = shared_payload("github/push-branch-update.json")
    headers = {"X-Hub-Signature": "sha1=cf93f9ba3c8d3a789e61f91e1e5c6a360d036e98"}
    assert not verify_signature("github", "topsecret", body, headers)


def test_gitea_vector_over_stored_payload_and_forgejo_header() -> None:
    body = shared_payload("gitea/push-new-branch.json")
    assert verify_signature("gitea", GITEA_SECRET, body, {"X-Gitea-Signature": GITEA_FILE_VECTOR})
    assert verify_signature("gitea", GITEA_SECRET, body, {"X-Forgejo-Signature": GITEA_FILE_VECTOR})
    assert not verify_signature("gitea", GITEA_SECRET, body[:-1], {"X-Gitea-Signature": GITEA_FILE_VECTOR})
    # Gitea adds an empty header when the hook has no secret: never a pass
    assert not verify_signature("gitea", GITEA_SECRET, body, {"X-Gitea-Signature": ""})


def test_gitea_own_vector() -> None:
    body = b'{"ref":"refs/heads/main"}'
    good = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert verify_signature("gitea", "s3cret", body, {"X-Gitea-Signature": good})
    assert not verify_signature("gitea", "s3cret", body, {"X-Gitea-Signature": "sha256=" + good})


def test_gitlab_token_equality() -> None:
    assert verify_signature("gitlab", "tok-en", b"{}", {"X-Gitlab-Token": "tok-en"})
    assert not verify_signature("gitlab", "tok-en", b"{}", {"X-Gitlab-Token": "tok-en "[:-1] + "x"})
    assert not verify_signature("gitlab", "tok-en", b"{}", {"X-Gitlab-Token": "tok-e"})
    assert not verify_signature("gitlab", "tok-en", b"{}", {"X-Gitlab-Token": "tök-en"})


@pytest.mark.parametrize(
    ("forge", "headers"),
    [
        ("github", {}),
        ("github", {"X-Hub-Signature-256": ""}),
        ("github", {"X-Hub-Signature-256": "sha256="}),
        ("github", {"X-Hub-Signature-256": "md5=abc"}),
        ("github", {"X-Hub-Signature-256": "sha256=zz\u00e9"}),
        ("gitea", {}),
        ("gitea", {"X-Gitea-Signature": "\u00e9\u00e9"}),
        ("gitlab", {}),
        ("gitlab", {"X-Gitlab-Token": ""}),
        ("bitbucket", {"X-Hub-Signature-256": "sha256=00"}),
    ],
)
def test_missing_or_garbled_headers_are_false_never_exceptions(forge: str, headers: dict[str, str]) -> None:
    assert verify_signature(forge, "secret", b"body", headers) is False


def test_empty_secret_refuses_everything() -> None:
    body = b"x"
    signature = "sha256=" + hmac.new(b"", body, hashlib.sha256).hexdigest()
    assert not verify_signature("github", "", body, {"X-Hub-Signature-256": signature})
    assert not verify_signature("gitlab", "", body, {"X-Gitlab-Token": ""})


def test_secrets_and_headers_with_lone_surrogates() -> None:
    # os.environ gives undecodable bytes as lone surrogates; they must not crash the check
    secret = "s\udcff"
    body = b"{}"
    good = hmac.new(b"s\xed\xb3\xbf", body, hashlib.sha256).hexdigest()
    assert verify_signature("gitea", secret, body, {"X-Gitea-Signature": good})
    assert not verify_signature("github", secret, body, {"X-Hub-Signature-256": "sha256=\ud800"})
    assert verify_signature("gitlab", secret, body, {"X-Gitlab-Token": secret})
