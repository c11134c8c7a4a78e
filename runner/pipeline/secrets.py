"""Secrets: reading the `NAME=value` secrets file and masking every form of a secret in log text.

A secret leaks in more shapes than its raw value: `echo $TOKEN | base64`, a URL with the token in a
query string, a JSON body printed by a debug log, `set -x` output with shell quoting. `Masker` builds
every such form once, compiles them into a single regular expression (a trie of alternatives, so the
cost per line is linear in its length), and replaces each occurrence with `***`.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, quote_plus

MASK = "***"
# Shorter values are masked raw only: their encoded forms would hide too much unrelated text.
MIN_LENGTH = 4
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_SHELL_SPECIAL = re.compile(r"([^\w@%+=:,./-])", re.ASCII)


class SecretsError(ValueError):
    """A secrets file that cannot be read; the message names file:line and never the value."""


def load_secrets_file(path: Path | str) -> dict[str, str]:
    """Read `NAME=value` lines: blank lines, `#` comments and an `export ` prefix are allowed.

    Values may be unquoted (a ` #` starts a comment), single-quoted (literal) or double-quoted
    (`\\n`, `\\t`, `\\"`, `\\\\` escapes); quoted values may span several lines. Later names win.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SecretsError(f"cannot read secrets file {path}: {reason}") from None
    lines = text.splitlines()
    secrets: dict[str, str] = {}
    index = 0
    while index < len(lines):
        lineno = index + 1
        line = lines[index].strip()
        index += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].lstrip()
        name, sep, rest = line.partition("=")
        name = name.strip()
        if not sep:
            raise SecretsError(f"{path}:{lineno}: expected NAME=value")
        if not _NAME.match(name):
            raise SecretsError(f"{path}:{lineno}: {name!r} is not a valid name (letters, digits and _)")
        rest = rest.lstrip()
        if rest[:1] in ("'", '"'):
            value, index = _quoted(path, lineno, rest, lines, index)
        else:
            value = re.split(r"\s#", rest, maxsplit=1)[0].rstrip()
        secrets[name] = value
    return secrets


def _quoted(path: Path, lineno: int, rest: str, lines: list[str], index: int) -> tuple[str, int]:
    """Parse a quoted value starting at `rest`, reading further lines while the quote is open."""
    quote_char = rest[0]
    buffer = rest[1:]
    out: list[str] = []
    while True:
        pos = 0
        while pos < len(buffer):
            char = buffer[pos]
            if char == quote_char:
                trailing = buffer[pos + 1 :].strip()
                if trailing and not trailing.startswith("#"):
                    raise SecretsError(f"{path}:{lineno}: unexpected text after the closing quote")
                return "".join(out), index
            if char == "\\" and quote_char == '"' and pos + 1 < len(buffer):
                nxt = buffer[pos + 1]
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                pos += 2
                continue
            out.append(char)
            pos += 1
        if index >= len(lines):
            raise SecretsError(f"{path}:{lineno}: the quote {quote_char} is never closed")
        out.append("\n")
        buffer = lines[index]
        index += 1


def _base64_forms(data: bytes) -> set[str]:
    """Base64 of `data` alone and its stable middle part at each of the 3 alignments in a longer stream."""
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms.add(encode(data).decode("ascii"))
        for offset in range(3):
            encoded = encode(b"\0" * offset + data).decode("ascii").rstrip("=")
            # Character i carries bits [6i, 6i+6): keep those made only of the value's bits.
            start = -(-8 * offset // 6)
            end = 8 * (offset + len(data)) // 6
            forms.add(encoded[start:end])
        whole = encode(data).decode("ascii")
        if len(whole) > 76:  # `base64` wraps its output at 76 columns, PEM at 64
            for width in (76, 64):
                forms.update(whole[i : i + width] for i in range(0, len(whole), width))
    return forms


def _forms(value: str, *, encoded: bool = True) -> set[str]:
    """Every printable form of one value; one line of a multi-line value skips the base64 forms
    (the whole value's cover what `base64` prints for it)."""
    forms = {value, value.strip()}
    if encoded:
        forms |= _base64_forms(value.encode("utf-8"))
    urls = {quote(value, safe=""), quote(value), quote_plus(value)}
    forms |= urls | {_PERCENT.sub(lambda m: m.group(0).lower(), url) for url in urls}
    escaped = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms |= escaped | {form.replace("/", "\\/") for form in escaped}  # some encoders escape `/`
    forms |= {shlex.quote(value), _SHELL_SPECIAL.sub(r"\\\1", value)}
    return {form for form in forms if len(form) >= MIN_LENGTH}


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex matching any of `words`, preferring the longest at each position."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def render(node: dict[str, dict]) -> str:
        # Walk single-child chains iteratively: a long secret must not mean deep recursion.
        literal: list[str] = []
        while len(node) == 1 and "" not in node:
            ((char, node),) = node.items()
            literal.append(char)
        prefix = re.escape("".join(literal))
        branches = [re.escape(char) + render(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return prefix
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:  # greedy `?`: the longer continuation first, ending here as the fallback
            return prefix + "(?:" + body + ")?"
        return prefix + body

    return render(trie)


class Masker:
    """Replaces every known form of every secret value with `***`.

    `values` is a mapping of name to value (names appear in `warnings`) or plain values. Values
    shorter than 4 characters are still masked raw, and a warning says so. Multi-line values are
    masked whole and line by line, since logs arrive one line at a time.
    """

    def __init__(self, values: Mapping[str, str] | Iterable[str]) -> None:
        named = values.items() if isinstance(values, Mapping) else ((None, v) for v in values)
        words: set[str] = set()
        self.warnings: list[str] = []
        for name, value in named:
            if not value:
                continue
            if len(value.strip()) < MIN_LENGTH:
                words.add(value)
                label = f"secret {name}" if name else "a secret"
                self.warnings.append(
                    f"{label} is shorter than {MIN_LENGTH} characters: masking it may hide unrelated text"
                )
                continue
            words |= _forms(value)
            for line in value.splitlines():
                if len(line.strip()) >= MIN_LENGTH:
                    words |= _forms(line, encoded=False)
        self._pattern: re.Pattern[str] | None = re.compile(_trie_pattern(words)) if words else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)
