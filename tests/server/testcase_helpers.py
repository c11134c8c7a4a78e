"""Builders for the tests-page tests: JUnit documents, finished builds with real parsed cases, and a
small HTML reader that finds elements by attribute (the page is checked the way the browser sees it)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from runner.reports import parse_junit
from runner.server.store import BuildPlan, BuildStore, JobPlan

SHARED_JUNIT = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "junit"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def junit(cases: list[tuple[str, str]], suite: str = "s", classname: str = "T", **extra: Any) -> bytes:
    """A JUnit document with one case per (name, status); `extra[name]` is (message, trace, stdout)."""
    rows = []
    for name, status in cases:
        message, trace, stdout = extra.get(name, (f"{name} broke", f"Traceback for {name}", ""))
        inner = ""
        if status in ("failed", "error"):
            tag = "failure" if status == "failed" else "error"
            inner = f"<{tag} message={quoteattr(message)}>{escape(trace)}</{tag}>"
        elif status == "skipped":
            inner = "<skipped/>"
        if stdout:
            inner += f"<system-out>{escape(stdout)}</system-out>"
        rows.append(
            f'<testcase classname="{classname}" name={quoteattr(name)} time="0.01">{inner}</testcase>'
        )
    return f"<testsuite name={quoteattr(suite)}>{''.join(rows)}</testsuite>".encode()


def finished_build(
    store: BuildStore,
    reports: list[bytes | Path],
    branch: str = "main",
    status: str = "failed",
    job: str = "unit",
    repo: str = "o/app",
) -> int:
    """A finished build whose job `job` collected the cases of `reports` (JUnit bytes or files)."""
    plan = BuildPlan(
        forge="github", repo=repo, repo_url="file:///x", ref=f"refs/heads/{branch}", sha="a" * 40,
        branch=branch, jobs=[JobPlan(job)],
    )  # fmt: skip
    build_id, _ = store.create_build(plan)
    [row] = store.jobs(build_id)
    assert store.claim_job(row.id, "tok", "test", 30) == "claimed"
    cases = [case for report in reports for case in parse_junit(report)]
    store.tests_collected(build_id, row.id, {"total": len(cases)}, cases)
    store.finish_job(row.id, "tok", status, "", 1, 1.0)
    store.finish_build(build_id, status)
    return build_id


class Element:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element] = []
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def find_all(self, **attrs: str) -> list[Element]:
        """Descendants whose attributes (underscores for dashes) have these values."""
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        found = []
        for child in self.children:
            if all(child.attrs.get(k) == v for k, v in wanted.items()):
                found.append(child)
            found.extend(child.find_all(**attrs))
        return found

    def find(self, **attrs: str) -> Element | None:
        found = self.find_all(**attrs)
        return found[0] if found else None

    def first(self, tag: str) -> Element | None:
        for child in self.children:
            if child.tag == tag:
                return child
            inner = child.first(tag)
            if inner is not None:
                return inner
        return None


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        node: Element | None = self.current
        while node is not None:  # text counts for every enclosing element
            node.parts.append(data)
            node = node.parent


def dom(html: str) -> Element:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.root


def cases_by_name(page: Element) -> dict[str, Element]:
    """The page's test cases by the name their <summary> shows."""
    result = {}
    for case in page.find_all(data_testid="test-case"):
        name = case.find(data_testid="test-name")
        assert name is not None
        result[name.text] = case
    return result
