"""Rendering the local ``report.html`` of a run with Jinja2 (autoescaped, self-contained, no network).

Templates come from the repository's top-level ``templates/`` folder; an installed package without
that folder falls back to ``runner/templates/``, a symlink to it that wheels turn into a copy.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import runner
from runner.reports.model import TestCase
from runner.reports.view import build_view, format_duration

if TYPE_CHECKING:
    import jinja2

REPORT_TEMPLATE: Final = "report.html.j2"
#: Longest text (trace, output) shown per field; the full text is in junit.xml and the job log.
MAX_TEXT: Final = 20_000


def repo_templates() -> Path:
    """The repository's top-level ``templates/`` folder (it may not exist in an installed package)."""
    return Path(runner.__file__).resolve().parent.parent / "templates"


def environment() -> jinja2.Environment:
    """A Jinja environment for report templates: autoescape always on, repository folder first."""
    folder = repo_templates()
    return _environment(folder if (folder / REPORT_TEMPLATE).is_file() else None)


@functools.cache
def _environment(folder: Path | None) -> jinja2.Environment:
    """One environment per template folder, so compiled templates are reused between renders."""
    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if folder is not None:
        loaders.append(jinja2.FileSystemLoader(folder))
    loaders.append(jinja2.PackageLoader("runner", "templates"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.ChainableUndefined,
    )
    env.filters["clip"] = clip
    env.filters["duration"] = format_duration
    return env


def render_report(summary: Mapping[str, Any], cases: Sequence[TestCase], path: Path) -> None:
    """Write the HTML report of a run to ``path`` (atomically).

    ``summary`` is the dict `runner exec` writes to summary.json; missing or odd keys are tolerated.
    """
    html = render_report_html(summary, cases)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(html)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_report_html(summary: Mapping[str, Any], cases: Sequence[TestCase]) -> str:
    """The report as a string (what `render_report` writes)."""
    template = environment().get_template(REPORT_TEMPLATE)
    return template.render(view=build_view(summary, cases))


def clip(text: str | None, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if not text:
        return ""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… {len(text) - limit} more characters (see junit.xml or the job log)"
