"""Durations (`20m`, `1h30m`, `10s`) to seconds, sizes (`512M`, `1G`) to bytes, rates (`10mbit`, `10M/s`)."""

from __future__ import annotations

import math
import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", re.IGNORECASE)
_DURATION = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)\s*)+", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", re.IGNORECASE)
_BYTES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

DURATION_HINT = "use a number of seconds or e.g. 30s, 20m, 1h30m"
SIZE_HINT = "use a number of bytes or e.g. 512M, 1G (K, M, G, T are powers of 1024)"


def parse_duration(value: str | int | float) -> float:
    """Seconds in `value`: a positive number of seconds, or a string like `1h30m`, `90s`, `1.5h`."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}; {DURATION_HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif _DURATION.fullmatch(text):
            seconds = sum(float(n) * _SECONDS[u.lower()] for n, u in _DURATION_PART.findall(text))
        else:
            raise ValueError(f"invalid duration '{value}'; {DURATION_HINT}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration must be positive, not '{value}'")
    return seconds


def parse_size(value: str | int | float) -> int:
    """Bytes in `value`: a number of bytes, or a string like `512M`, `1G`, `1.5GiB`, `64k`."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}; {SIZE_HINT}")
    if isinstance(value, int | float):
        number = float(value)
    else:
        match = _SIZE.fullmatch(value)
        if match is None or (match.group(3) and not match.group(2) and match.group(3).lower() != "b"):
            raise ValueError(f"invalid size '{value}'; {SIZE_HINT}")
        number = float(match.group(1)) * _BYTES[match.group(2).lower()]
    if not math.isfinite(number) or number < 1:
        raise ValueError(f"size must be at least 1 byte, not '{value}'")
    return int(number)


# Network rates as tc(8) writes them: `bit` units count bits, `bps` units count bytes, a k/m/g/t prefix is
# a power of 1000 and ki/mi/gi/ti a power of 1024 (so 10mbit = 10,000,000 bits/s, 1mbps = 8,000,000 bits/s).
_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?(bit|bps)\s*", re.IGNORECASE)
_RATE_PREFIX = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
_RATE_PREFIX.update({"ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4})
RATE_HINT = (
    "use e.g. 10mbit, 512kbit or 1mbps, as tc writes them"
    " (bit: bits/s, bps: bytes/s; k, m, g: powers of 1000)"
)
BYTE_RATE_HINT = (
    "use a number of bytes per second or e.g. 10M, 512K (K, M, G are powers of 1024; '/s' is optional)"
)


def parse_bandwidth(value: str | int | float) -> int:
    """Bits per second in `value`, a rate with tc's units (`10mbit`, `1mbps`, `512kibit`).

    A bare number is refused: tc reads it as bytes per second, which users rarely mean.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"invalid bandwidth {value!r}: a unit is needed; {RATE_HINT}")
    match = _RATE.fullmatch(value)
    if match is None:
        raise ValueError(f"invalid bandwidth '{value}'; {RATE_HINT}")
    number = float(match.group(1)) * _RATE_PREFIX[(match.group(2) or "").lower()]
    bits = number * (8 if match.group(3).lower() == "bps" else 1)
    if not math.isfinite(bits) or bits < 8:
        raise ValueError(f"bandwidth must be at least 8bit (one byte per second), not '{value}'")
    return int(bits)


def parse_byte_rate(value: str | int | float) -> int:
    """Bytes per second in `value`: a size per second, `10M`, `10M/s`, `512K`, or a number of bytes."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.lower().endswith("/s"):
        text = text[:-2]
    try:
        return parse_size(text)
    except ValueError:
        raise ValueError(f"invalid rate '{value}'; {BYTE_RATE_HINT}") from None


def parse_count(value: str | int | float, what: str = "count") -> int:
    """A whole number of at least 1 (I/O operations per second, tasks...)."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"invalid {what} {value!r}: use a whole number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"invalid {what} '{value}': use a whole number") from None
    if number < 1:
        raise ValueError(f"{what} must be at least 1, not '{value}'")
    return number


MIN_DISK = 8 * 1024**2  # an ext4 needs some room of its own (runner.sandbox.disk)


def parse_disk(value: str | int | float) -> int:
    """A job's disk size: a size of at least 8M."""
    size = parse_size(value)
    if size < MIN_DISK:
        raise ValueError(f"disk must be at least 8M, not '{value}'")
    return size
