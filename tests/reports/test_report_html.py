"""The local report.html: content, escaping, no network, well-formed, robust to odd summaries."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import runner
import runner.reports.render as render
from runner.reports import TestCase, counts, parse_junit, render_report
from runner.reports.model import Rerun

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
HOSTILE = "<script>alert('pwned')</script>"


class _Checker(HTMLParser):
    """Fails on what browsers silently repair: unbalanced or misnested tags, duplicate ids."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ids: set[str] = set()
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id":
                if value in self.ids:
                    self.problems.append(f"duplicate id {value}")
                self.ids.add(value or "")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _check(html: str) -> _Checker:
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert checker.problems == []
    assert checker.stack == []
    return checker


def _job(
    name: str, status: str, start: float | None, steps: list[tuple[str, str, float, int]]
) -> dict[str, Any]:
    offset = start or 0.0
    rows = []
    for step_name, step_status, duration, code in steps:
        rows.append(
            {"name": step_name, "status": step_status, "exit_code": code, "reason": "exited",
             "started_at": offset, "duration": duration, "cpu_time": duration / 2, "peak_memory": 12_345_678}
        )  # fmt: skip
        offset += duration
    return {
        "name": name, "status": status, "allow_failure": False, "started_at": start,
        "duration": sum(s[2] for s in steps), "attempts": 1, "reason": "", "steps": rows,
        "phases": [{"phase": "image", "duration": 0.01, "detail": "host"}],
        "tests": {}, "artifacts": [{"path": "dist/x 1.whl", "size": 2048}], "log": f"logs/{name}.log",
    }  # fmt: skip


def _sample(data: Path) -> tuple[dict[str, Any], list[TestCase]]:
    cases = parse_junit(data / "pytest-xunit2.xml") + parse_junit(data / "surefire-reruns.xml")
    for case in cases:
        case.job = "test (py: 3.12)" if case.suite == "pytest" else "java"
    t0 = 1_732_780_000.0
    jobs = [
        _job(
            "test (py: 3.12)", "failed", t0, [("unit tests", "failed", 4.0, 1), ("always", "passed", 0.5, 0)]
        ),
        _job("java", "failed", t0 + 1, [("mvn test", "failed", 6.0, 1)]),
        _job("deploy", "skipped", None, []),
    ]
    summary = {
        "status": "failed", "started_at": t0, "finished_at": t0 + 8, "duration": 8.0, "repo": "acme/widgets",
        "git": {"branch": "main", "sha": "0123456789abcdef0123"}, "jobs": jobs, "tests": counts(cases),
    }  # fmt: skip
    return summary, cases


def test_report_shows_failures_first_with_message_trace_and_output(tmp_path: Path, data: Path) -> None:
    summary, cases = _sample(data)
    target = tmp_path / "run" / "report.html"
    render_report(summary, cases, target)
    html = target.read_text(encoding="utf-8")
    _check(html)
    failures = html.index('id="failures"')
    assert failures < html.index('id="timeline"') < html.index('id="jobs"') < html.index('id="suites"')
    assert "AssertionError: lists differ &amp; that&#39;s &lt;bad&gt;" in html  # message, escaped
    assert "test_sample.py:13: AssertionError" in html  # trace
    assert "java.lang.AssertionError: still broken (rerun 2)" in html  # rerun kept
    assert html.index("test_sample.test_fails") > failures
    assert 'id="flaky"' in html and "passesAfterOneFailure" in html
    assert "acme/widgets" in html and "0123456789ab" in html and "0123456789abc" not in html
    assert 'href="logs/test%20%28py%3A%203.12%29.log"' in html
    assert 'href="artifacts/java/dist/x%201.whl"' in html
    assert "11.8 MiB" in html and "4.0s" in html


def test_script_in_test_data_is_inert(tmp_path: Path) -> None:
    case = TestCase(HOSTILE, HOSTILE, HOSTILE, "failed", 1.0, HOSTILE, HOSTILE, HOSTILE, HOSTILE, job=HOSTILE)
    case.reruns = [Rerun("rerunFailure", HOSTILE, HOSTILE, HOSTILE)]
    step = {"name": HOSTILE, "status": "failed", "reason": HOSTILE}
    job = {"name": HOSTILE, "status": "failed", "reason": HOSTILE, "log": HOSTILE, "started_at": 1.0}
    job |= {"duration": 1, "steps": [step], "artifacts": [{"path": HOSTILE}]}
    summary = {"status": "failed", "repo": HOSTILE, "git": {"branch": HOSTILE, "sha": HOSTILE}, "jobs": [job]}
    target = tmp_path / "report.html"
    render_report(summary, [case], target)
    html = target.read_text(encoding="utf-8")
    _check(html)
    assert HOSTILE not in html
    assert "alert(" not in "".join(re.findall(r"<script>(.*?)</script>", html, re.S))
    assert html.count("<script>") == 1  # only the report's own filter script
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html


def test_no_external_urls(tmp_path: Path, data: Path) -> None:
    summary, cases = _sample(data)
    target = tmp_path / "report.html"
    render_report(summary, cases, target)
    html = target.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"""(src|href)=["']?//""", html)
    assert "@import" not in html and "url(" not in html


@pytest.mark.parametrize(
    "summary",
    [
        {},
        {"status": "passed"},
        {"status": None, "jobs": None, "git": None, "tests": None, "started_at": "later", "duration": "x"},
        {
            "status": "weird",
            "jobs": [None, "x", {}, {"steps": [None, {}], "phases": "no", "artifacts": [{}]}],
        },
        {
            "jobs": [
                {"name": "j", "started_at": float("nan"), "duration": -5, "attempts": "many", "tests": [1]}
            ]
        },
    ],
)
def test_missing_or_odd_keys_do_not_crash(tmp_path: Path, summary: dict[str, Any]) -> None:
    target = tmp_path / "report.html"
    render_report(summary, [], target)
    _check(target.read_text(encoding="utf-8"))


def test_totals_come_from_the_summary_when_there_are_no_cases(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    totals = {"total": 12, "passed": 10, "failed": 2, "error": 0, "skipped": 0, "flaky": 0}
    render_report({"status": "failed", "tests": totals}, [], target)
    text = " ".join(" ".join(_check(target.read_text(encoding="utf-8")).text).split())
    assert "12 tests" in text and "2 failed" in text


def test_huge_output_is_clipped(tmp_path: Path) -> None:
    case = TestCase(suite="s", classname="c", name="n", status="failed", trace="x" * 1_000_000)
    target = tmp_path / "report.html"
    render_report({"status": "failed"}, [case], target)
    html = target.read_text(encoding="utf-8")
    assert len(html) < 200_000
    assert f"{1_000_000 - render.MAX_TEXT} more characters" in html


def test_templates_fall_back_to_the_packaged_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "repo_templates", lambda: tmp_path / "missing")
    target = tmp_path / "report.html"
    render_report({"status": "passed"}, [], target)
    assert "runner" in target.read_text(encoding="utf-8")


def test_packaged_template_copy_matches_the_repository_templates() -> None:
    repo = render.repo_templates()
    packaged = Path(runner.__file__).parent / "templates"
    if not repo.is_dir():
        pytest.skip("installed without the repository's templates/ folder")
    names = sorted(p.name for p in repo.glob("*") if p.name.startswith(("report", "_report")))
    assert names == sorted(p.name for p in packaged.glob("*.j2"))
    for name in names:
        assert (packaged / name).read_text() == (repo / name).read_text(), (
            f"runner/reports/templates/{name} differs from templates/{name}: "
            "run `cp templates/report*.j2 templates/_report*.j2 runner/reports/templates/`"
        )


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, runner.reports; "
        "print(sorted(m for m in ('jinja2', 'junitparser', 'defusedxml') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_thousands_of_failures_keep_the_page_small(tmp_path: Path) -> None:
    cases = [
        TestCase(
            suite="s", classname="c", name=f"t{i}", status="failed", message=f"boom {i}", trace="x" * 5000
        )
        for i in range(3000)
    ]
    target = tmp_path / "report.html"
    render_report({"status": "failed"}, cases, target)
    html = target.read_text(encoding="utf-8")
    assert html.count('class="failure failed"') == 200
    assert "… and 2800 more failing tests" in html
    assert "… and 1000 more tests" in html
    assert len(html) < 3_000_000


def test_collection_warnings_are_shown(tmp_path: Path) -> None:
    summary = {
        "status": "passed",
        "warnings": ["report pattern 'x/*.xml': no files match"],
        "jobs": [{"name": "unit", "status": "passed", "warnings": ["reports/evil.xml: skipped: outside"]}],
    }
    target = tmp_path / "report.html"
    render_report(summary, [], target)
    text = " ".join(_check(target.read_text(encoding="utf-8")).text)
    assert "report pattern 'x/*.xml': no files match" in text
    assert "unit: reports/evil.xml: skipped: outside" in text
