"""Which pushes build: `[skip ci]` markers and GitHub-style branch/tag glob patterns."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_SKIP = re.compile(r"\[(?:skip ci|ci skip)\]", re.IGNORECASE)


def skip_requested(message: str | None) -> bool:
    """True when a commit message asks for no build: `[skip ci]` or `[ci skip]`, any case."""
    return bool(message) and _SKIP.search(message or "") is not None


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    """A GitHub filter pattern as a regular expression.

    `*` any characters but `/`; `**` any characters; `?` the preceding character zero or one time;
    `+` the preceding character one or more times; `[...]` one character of a set or range;
    `\\` escapes the next character. Everything else is literal.
    """
    out: list[str] = []
    quantifiable = False  # whether the last piece is one character (a literal or a set)
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            quantifiable = False
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif char in "?+" and quantifiable:
            out.append(char)
            quantifiable = False
        elif char == "[":
            quantifiable = True
            end = pattern.find("]", i + 2 if pattern.startswith("[]", i) else i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
                continue
        elif char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            quantifiable = True
            i += 2
            continue
        else:
            out.append(re.escape(char))
            quantifiable = True
        i += 1
    try:
        return re.compile("".join(out))
    except re.error:
        return re.compile(re.escape(pattern))


def glob_match(pattern: str, name: str) -> bool:
    """One pattern against one branch or tag name (the whole name must match)."""
    return _compile(pattern).fullmatch(name) is not None


def branch_matches(patterns: Iterable[str] | str, name: str) -> bool:
    """True when `name` matches the patterns, read in order like GitHub's `branches:` filter.

    A pattern starting with `!` excludes what earlier patterns included; a list of only exclusions
    starts from everything included. An empty list matches nothing.
    """
    items = [patterns] if isinstance(patterns, str) else list(patterns)
    if not items:
        return False
    matched = all(item.startswith("!") for item in items)
    for item in items:
        if item.startswith("!"):
            if matched and glob_match(item[1:], name):
                matched = False
        elif not matched and glob_match(item, name):
            matched = True
    return matched
