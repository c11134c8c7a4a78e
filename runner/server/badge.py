"""`GET /badge/{repo}.svg?branch=`: the latest finished build's status as a flat SVG badge."""

from __future__ import annotations

from html import escape

COLORS = {
    "passed": "#2da44e",
    "failed": "#cf222e",
    "error": "#cf222e",
    "canceled": "#6e7781",
    "skipped": "#6e7781",
    "unknown": "#9a9a9a",
}


def _width(text: str) -> int:
    return 10 + 7 * len(text)  # about 7 px a character in 11 px Verdana


def render_badge(status: str | None, label: str = "build") -> str:
    value = status or "unknown"
    color = COLORS.get(value, COLORS["unknown"])
    left, right = _width(label), _width(value)
    total = left + right
    label_e, value_e = escape(label), escape(value)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{label_e}: {value_e}"><title>{label_e}: {value_e}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{color}"/>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2}" y="14">{label_e}</text>'
        f'<text x="{left + right / 2}" y="14">{value_e}</text></g></svg>'
    )
