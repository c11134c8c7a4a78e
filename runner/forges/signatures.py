"""Webhook authenticity: GitHub and Gitea HMAC-SHA256 signatures, GitLab's shared token, all constant-time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from runner.forges.events import header

GITEA_SIGNATURE_HEADERS = ("X-Gitea-Signature", "X-Forgejo-Signature", "X-Gogs-Signature")


def _utf8(text: str) -> bytes:
    """Bytes of any str, lone surrogates included (an undecodable environment variable has them)."""
    return text.encode("utf-8", "surrogatepass")


def _hex_hmac(secret: str, body: bytes) -> bytes:
    return hmac.new(_utf8(secret), body, hashlib.sha256).hexdigest().encode()


def _same(expected: bytes, given: str) -> bool:
    # compare_digest on bytes: a str with non-ASCII characters would raise TypeError instead of failing.
    return hmac.compare_digest(expected, _utf8(given.strip()))


def verify_signature(forge: str, secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """True when the request carries a valid proof of `secret` for `body`.

    An empty secret, a missing or empty header, or an unknown forge is False (never an exception):
    the contract refuses every webhook until RUNNER_WEBHOOK_SECRET is set.
    """
    if not secret:
        return False
    if forge == "github":
        given = header(headers, "X-Hub-Signature-256") or ""
        scheme, _, digest = given.strip().partition("=")
        if scheme.lower() != "sha256" or not digest:
            return False
        return _same(_hex_hmac(secret, body), digest.lower())
    if forge == "gitea":
        for name in GITEA_SIGNATURE_HEADERS:
            signature = header(headers, name)
            if signature:
                return _same(_hex_hmac(secret, body), signature.lower())
        return False
    if forge == "gitlab":
        token = header(headers, "X-Gitlab-Token")
        if not token:
            return False
        return hmac.compare_digest(_utf8(secret), _utf8(token))
    return False
