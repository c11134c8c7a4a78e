"""Lenient number and date readers for report attributes."""

from __future__ import annotations

import pytest

from runner.reports.values import parse_line, parse_seconds, parse_timestamp


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0.5", 0.5),
        ("1,234.5", 1234.5),
        ("0,25", 0.25),
        ("12s", 12.0),
        (" 3 ", 3.0),
        ("", 0.0),
        (None, 0.0),
        ("soon", 0.0),
        ("-1", 0.0),
        ("nan", 0.0),
        ("inf", 0.0),
    ],
)
def test_parse_seconds(text: str | None, seconds: float) -> None:
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize(
    ("text", "stamp"),
    [
        ("2024-01-03T11:23:00.00", 1704280980.0),
        ("2024-01-03T 12:40:13", 1704285613.0),
        ("2024-01-03 12:27:54Z", 1704284874.0),
        ("2024-01-03", 1704240000.0),
        ("2024-01-03T12:27:15+01:00", 1704281235.0),
        ("2020-09-09T12:14:31.535000", 1599653671.535),
        ("1700000000", 1700000000.0),
        ("1700000000250", 1700000000.25),
        ("0001-01-01T00:00:00Z", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_timestamp(text: str | None, stamp: float | None) -> None:
    assert parse_timestamp(text) == (pytest.approx(stamp) if stamp is not None else None)


@pytest.mark.parametrize(
    ("text", "line"), [("42", 42), ("0", 0), ("-3", None), ("x", None), ("", None), (None, None)]
)
def test_parse_line(text: str | None, line: int | None) -> None:
    assert parse_line(text) == line
