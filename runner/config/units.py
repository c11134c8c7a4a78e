"""Durations (`20m`, `1h30m`, `10s`) to seconds and sizes (`512M`, `1G`) to bytes."""

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
