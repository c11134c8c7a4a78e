"""Durations and sizes as users write them."""

from __future__ import annotations

import pytest

from runner.config.units import parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20m", 1200),
        ("10s", 10),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1.5h", 5400),
        ("500ms", 0.5),
        ("2d", 172800),
        ("90", 90),
        (45, 45),
        (0.25, 0.25),
        ("1H", 3600),
    ],
)
def test_durations(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["20x", "m", "", "1h-30m", "-5s", "ten minutes", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["0s", 0, -3])
def test_durations_must_be_positive(text: str | int) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1G", 1024**3),
        ("512M", 512 * 1024**2),
        ("512m", 512 * 1024**2),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("64k", 65536),
        ("64KB", 65536),
        ("1Ti", 1024**4),
        ("100", 100),
        ("100b", 100),
        (4096, 4096),
        ("2 G", 2 * 1024**3),
    ],
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["1X", "G", "1iB", "lots", "-1G", False])
def test_bad_sizes(text: object) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)  # type: ignore[arg-type]


def test_zero_size_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 byte"):
        parse_size("0M")
