"""`GET /badge/{repo}.svg?branch=`: a branch's build status as a flat, shields-style SVG badge.

A grey label ("build") beside the status in its colour, rounded corners, 11 px Verdana/DejaVu Sans.
Each side is as wide as its text plus 5 px of padding either way; the text widths come from the
advance widths of DejaVu Sans at 11 px (read from DejaVuSans.ttf's hmtx table), and `textLength`
holds each text to that width whichever of the two fonts the viewer has.
"""

from __future__ import annotations

import unicodedata
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import Response

# Advance widths in px at 11 px of the printable ASCII characters, from " " (32) to "~" (126).
_ASCII = (
    3.5, 4.41, 5.06, 9.22, 7.0, 10.45, 8.58, 3.02, 4.29, 4.29, 5.5, 9.22, 3.5, 3.97, 3.5, 3.71,
    7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 3.71, 3.71, 9.22, 9.22, 9.22, 5.84,
    11.0, 7.52, 7.55, 7.68, 8.47, 6.95, 6.33, 8.52, 8.27, 3.24, 3.24, 7.21, 6.13, 9.49, 8.23, 8.66,
    6.63, 8.66, 7.64, 6.98, 6.72, 8.05, 7.52, 10.88, 7.54, 6.72, 7.54, 4.29, 3.71, 4.29, 9.22, 5.5,
    5.5, 6.74, 6.98, 6.05, 6.98, 6.77, 3.87, 6.98, 6.97, 3.06, 3.06, 6.37, 3.06, 10.72, 6.97, 6.73,
    6.98, 6.98, 4.52, 5.73, 4.31, 6.97, 6.51, 9.0, 6.51, 6.51, 5.77, 7.0, 3.71, 7.0, 9.22,
)  # fmt: skip
_OTHER = 7.0  # a character outside ASCII: about an average lowercase letter
_WIDE = 11.0  # East Asian wide and full-width characters: a full em
PAD = 5  # px either side of each text
HEIGHT = 20
LABEL_COLOR = "#555"

# build status -> (badge text, colour); shields' palette
MESSAGES = {
    "passed": ("passing", "#4c1"),
    "failed": ("failing", "#e05d44"),
    "error": ("error", "#fe7d37"),
    "canceled": ("canceled", "#9f9f9f"),
    "skipped": ("skipped", "#9f9f9f"),
    "running": ("running", "#dfb317"),
    "queued": ("running", "#dfb317"),
}
UNKNOWN = ("unknown", "#9f9f9f")


def text_width(text: str) -> float:
    """The width in px of `text` set in 11 px DejaVu Sans (Verdana is within a few per cent)."""
    width = 0.0
    for char in text:
        code = ord(char)
        if 32 <= code < 127:
            width += _ASCII[code - 32]
        elif unicodedata.combining(char):
            continue
        elif unicodedata.east_asian_width(char) in ("W", "F"):
            width += _WIDE
        else:
            width += _OTHER
    return width


def badge_message(status: str | None) -> tuple[str, str]:
    """(text, colour) of the right side for a build status; None or an odd status is `unknown`."""
    return MESSAGES.get(status or "", UNKNOWN)


def render_badge(status: str | None, label: str = "build") -> str:
    message, color = badge_message(status)
    return render_flat(label, message, color)


def render_flat(label: str, message: str, color: str) -> str:
    """A flat badge: `label` on grey, `message` on `color`, in one rounded 20 px high SVG."""
    label_text, message_text = text_width(label), text_width(message)
    left = round(label_text) + 2 * PAD
    right = round(message_text) + 2 * PAD
    total = left + right
    title = escape(f"{label}: {message}")
    label_e, message_e = escape(label), escape(message)
    # Text is drawn at 10x and scaled down by 0.1, so that positions land on tenths of a pixel.
    lx, mx = left * 5, left * 10 + right * 5
    lw, mw = round(label_text * 10), round(message_text * 10)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{HEIGHT}" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        '<linearGradient id="badge-shine" x2="0" y2="100%">'
        '<stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="badge-round"><rect width="{total}" height="{HEIGHT}" rx="3" fill="#fff"/></clipPath>'
        '<g clip-path="url(#badge-round)">'
        f'<rect width="{left}" height="{HEIGHT}" fill="{LABEL_COLOR}"/>'
        f'<rect x="{left}" width="{right}" height="{HEIGHT}" fill="{color}"/>'
        f'<rect width="{total}" height="{HEIGHT}" fill="url(#badge-shine)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        'text-rendering="geometricPrecision" font-size="110">'
        f'<text aria-hidden="true" x="{lx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" '
        f'textLength="{lw}">{label_e}</text>'
        f'<text x="{lx}" y="140" transform="scale(.1)" textLength="{lw}">{label_e}</text>'
        f'<text aria-hidden="true" x="{mx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" '
        f'textLength="{mw}">{message_e}</text>'
        f'<text x="{mx}" y="140" transform="scale(.1)" textLength="{mw}">{message_e}</text>'
        "</g></svg>"
    )


router = APIRouter(tags=["ops"])


@router.get("/badge/{repo:path}.svg")
def badge(request: Request, repo: str, branch: str | None = None) -> Response:
    """The status of the latest finished build of `repo` (owner/name), of `branch` if given."""
    from runner.server.dashboard_queries import DashboardQueries

    status = DashboardQueries(request.app.state.queries.sessions).badge_status(repo, branch or None)
    return Response(
        render_badge(status),
        media_type="image/svg+xml",
        headers={"Cache-Control": "no-cache, max-age=0"},
    )
