"""Staging builds in the app's real store for the dashboard, build list and badge tests, and reading
the rendered HTML back as elements (the standard library's parser: what a browser sees as markup)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from runner.server.models import Build, Job
from runner.server.store import BuildPlan, BuildStore, JobPlan


def store(client: TestClient) -> BuildStore:
    found: BuildStore = client.app.state.service.store  # type: ignore[attr-defined]
    return found


def stage(
    client: TestClient,
    repo: str = "o/app",
    branch: str = "main",
    status: str = "passed",
    *,
    duration: float = 10.0,
    tests: tuple[int, int] = (0, 0),
    message: str = "a change",
    author: str = "Ada",
    jobs: tuple[str, ...] = ("unit",),
    started: float = 1_700_000_000.0,
) -> int:
    """A finished build whose jobs ran `duration` seconds and counted (total, failed) `tests`."""
    s = store(client)
    plan = BuildPlan(
        forge="github", repo=repo, repo_url="file:///x", ref=f"refs/heads/{branch}",
        sha="c0ffee" * 6 + "abcd", branch=branch, message=message, author=author,
        jobs=[JobPlan(name) for name in jobs],
    )  # fmt: skip
    build_id, _ = s.create_build(plan)
    s.start_build(build_id)
    for job in s.jobs(build_id):
        assert s.claim_job(job.id, "tok", "worker-1", 30) == "claimed"
        total, failed = tests
        s.tests_collected(build_id, job.id, {"total": total, "failed": failed, "passed": total - failed}, [])
        s.finish_job(job.id, "tok", status, "", 1, duration)
    s.finish_build(build_id, status)
    with s.sessions() as session:
        session.execute(
            update(Build)
            .where(Build.id == build_id)
            .values(created_at=started - 1, started_at=started, finished_at=started + duration)
        )
        session.commit()
    return build_id


def stage_waiting(
    client: TestClient, repo: str = "o/app", branch: str = "main", *, run_first: bool = False
) -> int:
    """An unfinished build of two jobs, `unit` then `e2e` (needs unit); `unit` enqueued or running."""
    s = store(client)
    plan = BuildPlan(
        forge="github", repo=repo, repo_url="file:///x", ref=f"refs/heads/{branch}", sha="d" * 40,
        branch=branch, jobs=[JobPlan("unit", labels=["big"]), JobPlan("e2e", needs=["unit"])],
    )  # fmt: skip
    build_id, _ = s.create_build(plan)
    unit = next(j for j in s.jobs(build_id) if j.name == "unit")
    s.mark_enqueued(unit.id)
    if run_first:
        s.start_build(build_id)
        assert s.claim_job(unit.id, "tok", "worker-7", 30) == "claimed"
    return build_id


def set_job_status(client: TestClient, build_id: int, status: str) -> None:
    with store(client).sessions() as session:
        session.execute(update(Job).where(Job.build_id == build_id).values(status=status))
        session.commit()


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Element] = field(default_factory=list)

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        found = []
        for child in self.children:
            if (tag is None or child.tag == tag) and all(
                child.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items()
            ):
                found.append(child)
            found.extend(child.find_all(tag, **attrs))
        return found

    def testid(self, name: str) -> list[Element]:
        return self.find_all(data_testid=name)


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        for element in self.stack[1:]:
            element.text += data


def parse_html(text: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def attrs_of(elements: list[Element], name: str) -> list[Any]:
    return [e.attrs.get(name) for e in elements]
