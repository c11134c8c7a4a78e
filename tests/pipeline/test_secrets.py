"""Secrets: the secrets file format and masking of every form of a value."""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from runner.pipeline.secrets import MASK, Masker, SecretsError, load_secrets_file

SECRET = "s3cr3t/Pa$$ w0rd+&\"quote'!"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "secrets.env"
    path.write_text(text)
    return path


# --- the secrets file -----------------------------------------------------------------------


def test_file_forms(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# a comment\n"
        "\n"
        "PLAIN=abc def   # trailing comment\n"
        "export EXPORTED=x1\n"
        "HASH=a#b\n"
        "SINGLE='lit\\n $x # not a comment'\n"
        'DOUBLE="tab\\there \\"q\\" \\\\"  # comment\n'
        "EMPTY=\n"
        "  SPACED = value  \n"
        'MULTI="-----BEGIN KEY-----\n'
        "line2\n"
        '-----END KEY-----"\n'
        "PLAIN=second wins\n",
    )
    assert load_secrets_file(path) == {
        "PLAIN": "second wins",
        "EXPORTED": "x1",
        "HASH": "a#b",
        "SINGLE": "lit\\n $x # not a comment",
        "DOUBLE": 'tab\there "q" \\',
        "EMPTY": "",
        "SPACED": "value",
        "MULTI": "-----BEGIN KEY-----\nline2\n-----END KEY-----",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("OK=1\nno equals sign here\n", ":2: expected NAME=value"),
        ("1BAD=x\n", ":1: '1BAD' is not a valid name"),
        ("A-B=x\n", ":1: 'A-B' is not a valid name"),
        ('A="open\nstill open\n', ':1: the quote " is never closed'),
        ("A='x' trailing\n", ":1: unexpected text after the closing quote"),
    ],
)
def test_file_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SecretsError) as info:
        load_secrets_file(path)
    assert str(info.value) == f"{path}{message}" or str(info.value).startswith(f"{path}{message}")
    assert "\n" not in str(info.value)


def test_file_error_never_shows_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, "TOKEN='hunter22' oops\n")
    with pytest.raises(SecretsError) as info:
        load_secrets_file(path)
    assert "hunter22" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match=r"cannot read secrets file .*nope\.env: No such file"):
        load_secrets_file(tmp_path / "nope.env")


# --- masking --------------------------------------------------------------------------------


def masked(text: str, *values: str) -> str:
    return Masker(list(values)).mask(text)


def test_raw_value_masked_everywhere() -> None:
    assert masked(f"a {SECRET} b {SECRET}", SECRET) == f"a {MASK} b {MASK}"


def test_no_secrets_is_identity() -> None:
    masker = Masker({})
    assert not masker
    assert masker.mask("anything [red]") == "anything [red]"


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
@pytest.mark.parametrize("prefix", [b"", b"x", b"xy", b"xyz", b'{"token": "'])
@pytest.mark.parametrize("suffix", [b"", b"!", b"!?", b'"}\n'])
def test_base64_inside_a_longer_stream(
    encode: Callable[[bytes], bytes], prefix: bytes, suffix: bytes
) -> None:
    stream = encode(prefix + SECRET.encode() + suffix).decode()
    out = masked(f"payload={stream}", SECRET)
    if not prefix and not suffix:
        assert out == f"payload={MASK}"
        return
    # Exactly the characters made only of the value's bits are hidden; the edge characters that
    # also carry the neighbours' bits stay, and so does everything else.
    start = -(-8 * len(prefix) // 6)
    end = 8 * (len(prefix) + len(SECRET.encode())) // 6
    if len(prefix) % 3 == 0 and not suffix:  # the value's own padded encoding ends the stream
        assert out == f"payload={stream[:start]}{MASK}"
    else:
        assert out == f"payload={stream[:start]}{MASK}{stream[end:]}"


def test_base64_alone_is_masked_whole() -> None:
    for value in ("abcd", "abcde", "abcdef", SECRET):
        assert masked(base64.b64encode(value.encode()).decode(), value) == MASK


def test_wrapped_base64_lines_are_masked() -> None:
    value = "k" * 200
    encoded = base64.b64encode(value.encode()).decode()
    lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    masker = Masker([value])
    assert all(MASK in masker.mask(line) for line in lines)


@pytest.mark.parametrize(
    "form",
    [
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(SECRET, safe="")),
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET)[1:-1].replace("/", "\\/"),
        json.dumps({"t": SECRET}),
        shlex.quote(SECRET),
    ],
)
def test_escaped_forms(form: str) -> None:
    out = masked(f"GET /x?token={form} HTTP/1.1", SECRET)
    assert MASK in out
    for piece in ("s3cr3t", "w0rd", "Pa%24"):
        assert piece not in out


def test_json_non_ascii() -> None:
    value = "pässwörd-ünïcode"
    assert "ss" not in masked(json.dumps({"p": value}), value).replace('"p"', "")
    assert masked(json.dumps(value, ensure_ascii=False), value) == f'"{MASK}"'


def test_shell_backslash_escaped() -> None:
    assert masked("+ curl -u user:a\\ b\\$c\\&d", "a b$c&d") == f"+ curl -u user:{MASK}"


def test_multi_line_value_masked_line_by_line() -> None:
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END KEY-----"
    masker = Masker([key])
    for line in key.splitlines():
        assert masker.mask(f"> {line}") == f"> {MASK}"
    assert masker.mask(key) == MASK


def test_multi_line_value_trivial_lines_are_left_alone() -> None:
    masker = Masker(["first-line-secret\n}\n\nsecond-line-secret"])
    assert masker.mask("}") == "}"
    assert masker.mask("first-line-secret and second-line-secret") == f"{MASK} and {MASK}"


def test_short_values_masked_raw_with_a_warning() -> None:
    masker = Masker({"PIN": "123", "TOKEN": "long-enough"})
    assert masker.mask("pin 123 here") == f"pin {MASK} here"
    assert masker.warnings == ["secret PIN is shorter than 4 characters: masking it may hide unrelated text"]
    # Encoded forms of a short value are not masked: they would match far too much.
    assert masker.mask(base64.b64encode(b"123").decode()) == "MTIz"


def test_empty_value_masks_nothing() -> None:
    masker = Masker({"EMPTY": ""})
    assert masker.mask("text") == "text"
    assert masker.warnings == []


def test_longest_first() -> None:
    masker = Masker(["abcd", "abcdefgh"])
    assert masker.mask("abcdefgh abcdxyz") == f"{MASK} {MASK}xyz"


def test_overlapping_secrets_and_regex_metacharacters() -> None:
    masker = Masker(["a.b*c(d)", "[x]{2}|y"])
    assert masker.mask("a.b*c(d) aXbbc(d) [x]{2}|y xx") == f"{MASK} aXbbc(d) {MASK} xx"


def test_long_secret_and_many_lines() -> None:
    big = "Z" * 5000 + "tail"
    values = [big] + [f"token-{i:04d}-value" for i in range(200)]
    masker = Masker(values)
    line = "ordinary log output with nothing secret in it, just text " * 4
    lines = [line] * 10000
    out = [masker.mask(text) for text in lines]
    assert out == lines
    assert masker.mask(f"x{big}y token-0199-value") == f"x{MASK}y {MASK}"
