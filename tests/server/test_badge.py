"""The status badge: shields' flat look computed from character widths, and the `/badge/{repo}.svg` route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_helpers import stage, stage_waiting
from defusedxml import ElementTree
from fastapi.testclient import TestClient
from server_helpers import settings_for

from runner.server.app import create_app
from runner.server.badge import PAD, render_badge, render_flat, text_width

SVG = "{http://www.w3.org/2000/svg}"


def parts(svg: str) -> dict[str, object]:
    """What a viewer draws: total width, the two rectangles' widths and colours, the texts, the title."""
    root = ElementTree.fromstring(svg)
    rects = root.findall(f"{SVG}g/{SVG}rect")
    texts = [t for t in root.iter(f"{SVG}text") if t.get("aria-hidden") != "true"]
    return {
        "width": int(root.get("width")),
        "height": int(root.get("height")),
        "left": int(rects[0].get("width")),
        "right": int(rects[1].get("width")),
        "right_x": int(rects[1].get("x")),
        "label_color": rects[0].get("fill"),
        "color": rects[1].get("fill"),
        "texts": [t.text for t in texts],
        "title": root.find(f"{SVG}title").text,
        "aria": root.get("aria-label"),
        "role": root.get("role"),
        "rx": root.find(f"{SVG}clipPath/{SVG}rect").get("rx"),
    }


@pytest.mark.parametrize(
    ("status", "text", "color"),
    [
        ("passed", "passing", "#4c1"),
        ("failed", "failing", "#e05d44"),
        ("error", "error", "#fe7d37"),
        ("canceled", "canceled", "#9f9f9f"),
        ("running", "running", "#dfb317"),
        (None, "unknown", "#9f9f9f"),
        ("something-new", "unknown", "#9f9f9f"),
    ],
)
def test_each_status_has_its_word_and_colour(status, text, color):
    drawn = parts(render_badge(status))
    assert drawn["texts"] == ["build", text]
    assert drawn["color"] == color and drawn["label_color"] == "#555"
    assert drawn["title"] == drawn["aria"] == f"build: {text}" and drawn["role"] == "img"
    assert drawn["height"] == 20 and drawn["rx"] == "3"
    assert drawn["left"] == round(text_width("build")) + 2 * PAD
    assert drawn["right"] == round(text_width(text)) + 2 * PAD
    assert drawn["right_x"] == drawn["left"] and drawn["width"] == drawn["left"] + drawn["right"]


def test_widths_follow_the_characters():
    # DejaVu Sans at 11 px: "build" is b 6.98 + u 6.97 + i 3.06 + l 3.06 + d 6.98
    assert text_width("build") == pytest.approx(27.05)
    assert text_width("iiii") < text_width("mmmm")  # not a fixed width per character
    widths = [
        parts(render_flat("build", word, "#4c1"))["width"] for word in ("ok", "passing", "passing passing")
    ]
    assert widths[0] < widths[1] < widths[2]
    assert (
        parts(render_flat("coverage", "ok", "#4c1"))["left"] > parts(render_flat("ci", "ok", "#4c1"))["left"]
    )
    assert text_width("界") > text_width("a") > 0 and text_width("é") > 0


def test_text_is_escaped_and_the_svg_still_parses():
    drawn = parts(render_flat('<b>"&', "x</text><script>", "#4c1"))
    assert drawn["texts"] == ['<b>"&', "x</text><script>"]


@pytest.fixture
def client(tmp_path: Path, redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(tmp_path, redis_url))) as test_client:
        yield test_client


def badge_text(client: TestClient, url: str) -> str:
    answer = client.get(url)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("image/svg+xml")
    assert "no-cache" in answer.headers["cache-control"]
    texts = parts(answer.text)["texts"]
    assert isinstance(texts, list)
    return str(texts[1])


def test_the_route_reads_the_latest_finished_build_of_a_branch(client):
    stage(client, "owner/app", "main", "passed")
    stage(client, "owner/app", "dev", "failed")
    assert badge_text(client, "/badge/owner/app.svg?branch=main") == "passing"
    assert badge_text(client, "/badge/owner/app.svg?branch=dev") == "failing"
    assert badge_text(client, "/badge/owner/app.svg") == "failing"  # the repository's latest
    assert badge_text(client, "/badge/owner/app.svg?branch=") == "failing"
    assert badge_text(client, "/badge/owner/app.svg?branch=nowhere") == "unknown"
    assert badge_text(client, "/badge/owner/other.svg") == "unknown"
    assert badge_text(client, "/badge/app.svg") == "unknown"  # "app" alone is another repository

    stage_waiting(client, "owner/app", "main")  # a newer build still running keeps the finished status
    assert badge_text(client, "/badge/owner/app.svg?branch=main") == "passing"
    stage_waiting(client, "owner/new", "main", run_first=True)  # nothing finished yet
    assert badge_text(client, "/badge/owner/new.svg") == "running"
    stage(client, "group/sub/project", "main", "error")  # GitLab's nested groups
    assert badge_text(client, "/badge/group/sub/project.svg?branch=main") == "error"
