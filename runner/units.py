"""Parsing of the sizes, durations and CPU amounts users write: `256M`, `1.5G`, `10s`, `1h30m`, `1.5`."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?[bB]?)\s*$")
_SIZE_FACTORS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_FACTORS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_size(text: str | int) -> int:
    """Bytes from `512`, `256M`, `1.5G`, `2GiB`, `64kb` (binary multiples, as Docker does)."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"size {text} is negative")
        return text
    match = _SIZE.match(text)
    if not match:
        raise ValueError(
            f"invalid size {text!r}: use a number with an optional unit K, M, G or T (e.g. 256M)"
        )
    number, unit, _ = match.groups()
    return int(float(number) * _SIZE_FACTORS[unit.lower()])


def parse_duration(text: str | int | float) -> float:
    """Seconds from `90`, `10s`, `20m`, `1h30m`, `250ms`, `1.5h`."""
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"duration {text} is negative")
        return float(text)
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"invalid duration {text!r}: use e.g. 30s, 20m, 1h30m")
    return sum(float(n) * _DURATION_FACTORS[u] for n, u in parts)


def parse_cpus(text: str | int | float) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"invalid CPU amount {text!r}: use a number such as 1 or 1.5") from None
    if not 0 < value <= 1024:
        raise ValueError(f"invalid CPU amount {text!r}: must be greater than 0")
    return value


def format_bytes(size: float | None) -> str:
    """`12345678` -> `11.8 MiB` (binary multiples, as limits are written); None -> ``."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""  # unreachable: the loop returns at GiB
