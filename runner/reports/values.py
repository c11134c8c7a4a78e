"""Lenient readers for the numbers and dates that test tools write into report attributes.

Every tool spells them its own way (``time="1,234.5"``, ``timestamp="2024-01-03T 12:40:13"``,
Go's zero time ``0001-01-01T00:00:00Z``); a value that cannot be read becomes a neutral default
instead of failing the whole report.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

_EARLIEST = datetime(1971, 1, 1, tzinfo=UTC).timestamp()
_DATE_TIME_GAP = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ]+")


def parse_seconds(text: str | None) -> float:
    """A duration in seconds: ``"0.5"``, ``"1,234.5"`` (thousands), ``"0,5"`` (decimal comma), ``"12s"``.

    Anything unreadable, negative or not finite is 0.0.
    """
    if not text:
        return 0.0
    value = text.strip().lower().removesuffix("s").strip()
    if "," in value:
        value = value.replace(",", "") if "." in value else value.replace(",", ".")
    try:
        seconds = float(value)
    except ValueError:
        return 0.0
    if not math.isfinite(seconds) or seconds < 0:
        return 0.0
    return seconds


def parse_timestamp(text: str | None) -> float | None:
    """A POSIX timestamp from an ISO-8601-ish date, or None when absent, unreadable or a "zero" date.

    Accepts ``2024-01-03``, ``2024-01-03T11:23:00.00``, ``2024-01-03T 12:40:13``,
    ``2024-01-03 12:27:54Z``, offsets like ``-01:00``, and epoch seconds or milliseconds.
    Times without an offset are taken as UTC.
    """
    if not text:
        return None
    value = text.strip()
    if not value:
        return None
    if re.fullmatch(r"\d{9,13}(\.\d+)?", value):
        number = float(value)
        return number / 1000 if number > 1e11 else number
    value = _DATE_TIME_GAP.sub(r"\1T", value, count=1)
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        stamp = moment.timestamp()
    except (OverflowError, ValueError):
        return None
    return stamp if stamp >= _EARLIEST else None


def parse_line(text: str | None) -> int | None:
    """A source line number, or None when absent or not a non-negative integer."""
    if not text:
        return None
    value = text.strip()
    return int(value) if value.isdigit() and len(value) < 10 else None
