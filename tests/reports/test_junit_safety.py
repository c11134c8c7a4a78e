"""Hostile and broken report files are refused with one clear line naming the file, fast and small."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import pytest

from runner.reports import ReportError, parse_junit
from runner.reports.junit import MAX_SUITE_DEPTH


def test_xxe_reading_a_host_file_is_refused(data: Path) -> None:
    with pytest.raises(ReportError) as caught:
        parse_junit(data / "xxe-file.xml")
    message = str(caught.value)
    assert message.startswith(f"{data / 'xxe-file.xml'}: refused: the file declares a DTD")
    assert "root:" not in message  # nothing of /etc/passwd leaks into the error


def test_xxe_from_bytes_never_expands_the_entity(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    xml = (
        f'<!DOCTYPE t [<!ENTITY s SYSTEM "file://{secret}">]>'
        '<testsuite name="x"><testcase name="leak">'
        '<failure message="&s;">&s;</failure></testcase></testsuite>'
    ).encode()
    with pytest.raises(ReportError) as caught:
        parse_junit(xml, source="reports/leak.xml")
    assert "TOP-SECRET-VALUE" not in str(caught.value)
    assert str(caught.value).startswith("reports/leak.xml: refused")


def test_billion_laughs_is_refused_quickly_without_memory_growth(data: Path) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(ReportError, match=r"billion-laughs\.xml: refused: the file declares a DTD"):
        parse_junit(data / "billion-laughs.xml")
    assert time.monotonic() - started < 1.0
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 50 * 1024  # expanded, the bomb would be ~3 GB


def test_external_dtd_is_refused(data: Path) -> None:
    with pytest.raises(ReportError, match="refused: the file declares a DTD"):
        parse_junit(data / "xxe-external-dtd.xml")


def test_entity_without_dtd_is_a_parse_error() -> None:
    with pytest.raises(
        ReportError, match=r"^r\.xml: not well-formed XML at line 1, column \d+: undefined entity"
    ):
        parse_junit(b"<testsuite><testcase name='&x;'/></testsuite>", source="r.xml")


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    with big.open("wb") as handle:
        handle.truncate(51 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(ReportError, match=r"big\.xml: refused: 51\.0 MiB is over the 50\.0 MiB limit"):
        parse_junit(big)


def test_size_cap_applies_to_bytes_and_is_configurable() -> None:
    with pytest.raises(ReportError, match="over the 100 bytes limit"):
        parse_junit(b"<testsuite>" + b" " * 200 + b"</testsuite>", max_bytes=100)


def test_malformed_and_foreign_files(data: Path) -> None:
    with pytest.raises(
        ReportError, match=r"truncated\.xml: not well-formed XML at line 5, column 1: no element found"
    ):
        parse_junit(data / "truncated.xml")
    with pytest.raises(ReportError, match=r"not-junit\.xml: not a JUnit report: the root element is <html>"):
        parse_junit(data / "not-junit.xml")
    with pytest.raises(ReportError, match="the file is empty"):
        parse_junit(b"  \n")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"nope\.xml: cannot open: No such file"):
        parse_junit(tmp_path / "nope.xml")
    with pytest.raises(ReportError, match="not a regular file"):
        parse_junit(tmp_path)


def test_fifo_is_refused_instead_of_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.xml"
    os.mkfifo(fifo)
    with pytest.raises(ReportError, match="not a regular file"):
        parse_junit(fifo)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    depth = MAX_SUITE_DEPTH + 1
    xml = ('<testsuite name="s">' * depth + "</testsuite>" * depth).encode()
    with pytest.raises(ReportError, match=f"nested more than {MAX_SUITE_DEPTH} deep"):
        parse_junit(xml)
    ok = ('<testsuite name="s">' * 5 + '<testcase name="deep"/>' + "</testsuite>" * 5).encode()
    assert parse_junit(ok)[0].suite == " / ".join(["s"] * 5)


def test_very_deep_xml_elements_do_not_crash_the_parser() -> None:
    xml = ("<testsuites>" + "<x>" * 100_000 + "</x>" * 100_000 + "</testsuites>").encode()
    assert parse_junit(xml) == []


def test_control_characters_are_a_clear_error() -> None:
    with pytest.raises(ReportError, match="not well-formed"):
        parse_junit(b"<testsuite><testcase name='a\x01'/></testsuite>")
