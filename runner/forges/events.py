"""The plain types a webhook turns into: PushEvent, Ping, Ignored, and PayloadError for bad bodies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Forge = Literal["github", "gitlab", "gitea"]
FORGES: tuple[Forge, ...] = ("github", "gitlab", "gitea")

ZERO_SHA = "0" * 40


class PayloadError(ValueError):
    """A webhook body that cannot be understood; its message is one line, fit for an HTTP 400 answer."""


@dataclass(frozen=True)
class PushEvent:
    """A push of a branch or a tag, in the same shape for every forge.

    `sha` is the commit to build (for a tag: the commit it points at when the payload says so);
    `branch` / `tag` are the short names (one of them is None); `deleted` is a branch or tag deletion,
    which builds nothing; `author` is the head commit's author name, else the pusher's.
    """

    forge: Forge
    delivery_id: str
    repo: str
    clone_url: str
    ref: str
    branch: str | None
    tag: str | None
    sha: str
    before: str
    deleted: bool
    created: bool
    message: str
    author: str
    event: Literal["push", "tag"]


@dataclass(frozen=True)
class Ping:
    """A forge checking that the hook works (GitHub `ping`): answered 200, builds nothing."""

    forge: Forge
    delivery_id: str
    repo: str | None


@dataclass(frozen=True)
class Ignored:
    """A well-formed event this runner does not build (pull requests, issues, ...), with the reason."""

    forge: Forge
    delivery_id: str
    reason: str


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value by case-insensitive name (works for plain dicts as well as Starlette headers)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, item in headers.items():
        if key.lower() == lowered:
            return item
    return None


def check_forge(forge: str) -> Forge:
    if forge not in FORGES:
        raise PayloadError(f"unknown forge {forge!r}: expected one of {', '.join(FORGES)}")
    return forge
