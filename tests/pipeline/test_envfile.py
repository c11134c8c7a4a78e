"""The $RUNNER_ENV format and its defensive reading."""

from __future__ import annotations

import os
from pathlib import Path

from runner.pipeline import envfile


def test_plain_lines_and_values_with_equals() -> None:
    values, warnings = envfile.parse("A=1\nB=x=y\n\nEMPTY=\n")
    assert values == {"A": "1", "B": "x=y", "EMPTY": ""}
    assert warnings == []


def test_heredoc_form_and_crlf() -> None:
    text = "MSG<<EOF\r\nline one\r\nline two\r\nEOF\r\nAFTER=yes\r\n"
    values, warnings = envfile.parse(text)
    assert values == {"MSG": "line one\nline two", "AFTER": "yes"}
    assert warnings == []


def test_heredoc_value_may_contain_equals_and_lt() -> None:
    values, _ = envfile.parse("X<<END\na=b<<c\nEND\n")
    assert values == {"X": "a=b<<c"}


def test_later_value_wins() -> None:
    values, _ = envfile.parse("A=1\nA=2\n")
    assert values == {"A": "2"}


def test_bad_lines_warn_with_line_numbers() -> None:
    values, warnings = envfile.parse("ok=1\nnot a var\n1BAD=x\nOPEN<<EOF\nnever closed\n")
    assert values == {"ok": "1"}
    assert len(warnings) == 3
    assert warnings[0].startswith("RUNNER_ENV line 2:")
    assert "line 3" in warnings[1] and "'1BAD'" in warnings[1]
    assert "line 4" in warnings[2] and "never closed" in warnings[2]


def test_reset_replaces_a_planted_symlink_without_touching_its_target(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("SECRET=hunter2\n")
    env = tmp_path / "env"
    env.symlink_to(target)
    envfile.reset(env)
    assert not env.is_symlink() and env.read_text() == ""
    assert target.read_text() == "SECRET=hunter2\n"


def test_read_refuses_symlink_and_fifo(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("ROOT=hash\n")
    link = tmp_path / "env"
    link.symlink_to(secret)
    values, warnings = envfile.read(link)
    assert values == {} and "not a file" in warnings[0]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    values, warnings = envfile.read(fifo)  # must not block
    assert values == {} and "not a regular file" in warnings[0]


def test_read_missing_file_and_size_cap(tmp_path: Path) -> None:
    assert envfile.read(tmp_path / "absent") == ({}, [])
    big = tmp_path / "big"
    big.write_text("A=1\n" + "B=" + "x" * (envfile.MAX_BYTES + 10) + "\n")
    values, warnings = envfile.read(big)
    assert values["A"] == "1"
    assert any("larger than" in w for w in warnings)
