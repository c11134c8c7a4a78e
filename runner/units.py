"""CPU amounts users write (`1.5`) and sizes shown to them (`11.8 MiB`).

Sizes and durations are parsed by runner.config.units, for ci.yml and command-line flags alike.
"""

from __future__ import annotations


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
