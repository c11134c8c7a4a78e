"""Branch and tag filters (GitHub glob semantics) and the `[skip ci]` markers."""

from __future__ import annotations

import pytest

from runner.forges import branch_matches, skip_requested


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("fix typo [skip ci]", True),
        ("[CI SKIP] docs only", True),
        ("Docs\n\nbody text [Skip CI]", True),
        ("skip ci", False),
        ("[skip-ci]", False),
        ("[skip ci", False),
        ("", False),
        (None, False),
    ],
)
def test_skip_requested(message: str | None, expected: bool) -> None:
    assert skip_requested(message) is expected


@pytest.mark.parametrize(
    ("patterns", "name", "expected"),
    [
        (["main"], "main", True),
        (["main"], "main2", False),
        (["main"], "xmain", False),
        (["release/*"], "release/1.0", True),
        (["release/*"], "release/1.0/hotfix", False),
        (["release/**"], "release/1.0/hotfix", True),
        (["**"], "a/b/c", True),
        (["*"], "a/b", False),
        (["feature/*-fix"], "feature/login-fix", True),
        (["v*"], "v1.2.3", True),
        (["v*"], "version/2", False),
        (["v[12].*"], "v1.0", True),
        (["v[12].*"], "v3.0", False),
        (["v[0-9]+"], "v2024", True),
        (["v[0-9]+"], "v", False),
        (["colou?r"], "color", True),
        (["colou?r"], "colour", True),
        (["colou?r"], "colouur", False),
        (["a.b"], "axb", False),  # a dot is literal, not a regex wildcard
        (["main", "release/*"], "release/x", True),
        (["release/**", "!release/**-alpha"], "release/1.0-alpha", False),
        (["release/**", "!release/**-alpha"], "release/1.0", True),
        (["!main"], "dev", True),
        (["!main"], "main", False),
        ([], "main", False),
        ("main", "main", True),
        (["[unclosed"], "[unclosed", True),
        (["\\*"], "*", True),
        (["\\*"], "x", False),
        (["**+"], "x", False),  # a quantifier after a wildcard is a literal '+'
        (["**+"], "x+", True),
    ],
)
def test_branch_matches(patterns: list[str] | str, name: str, expected: bool) -> None:
    assert branch_matches(patterns, name) is expected
