"""Starting, canceling and rerunning builds: what webhooks and the API share.

`BuildService.trigger` is the path of a push: fetch the repository into its mirror, read ci.yml at
the pushed sha, plan, record the build with its delivery in one transaction, cancel superseded
builds of the branch, enqueue the first jobs, and only then answer. When the broker refuses, the
build is marked `error` and the delivery forgotten, so that the forge's redelivery starts afresh.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from runner.server.planning import CI_FILE, Ignored, Push, plan_build
from runner.server.queue import Dispatcher
from runner.server.scheduler import advance
from runner.server.settings import ServerSettings
from runner.server.status import report_build, report_final
from runner.server.store import BuildStore

log = logging.getLogger("runner.server.builds")


class SourceUnavailable(Exception):
    """The repository or the sha cannot be read; one line for the caller."""


class BrokerUnavailable(Exception):
    """The build was recorded but its jobs could not be enqueued."""


@dataclass
class Outcome:
    build_id: int | None
    created: bool
    ignored: str = ""


class BuildService:
    def __init__(self, settings: ServerSettings, store: BuildStore, dispatcher: Dispatcher) -> None:
        self.settings = settings
        self.store = store
        self.dispatcher = dispatcher
        self._mirrors: Any = None

    @property
    def mirrors(self) -> Any:
        if self._mirrors is None:
            from runner.sources.mirror import Mirrors

            self._mirrors = Mirrors(self.settings.paths)
        return self._mirrors

    def read_ci(self, push: Push) -> str | None:
        from runner.sources.mirror import SourceError

        try:
            if not push.sha:
                push.sha = self.mirrors.resolve(push.clone_url, push.ref)
            data = self.mirrors.read_file(push.clone_url, push.sha, CI_FILE)
        except SourceError as exc:
            raise SourceUnavailable(str(exc)) from exc
        return None if data is None else data.decode("utf-8", errors="replace")

    def trigger(
        self, push: Push, delivery: tuple[str, str] | None = None, check_triggers: bool = True
    ) -> Outcome:
        try:
            plan = plan_build(push, self.read_ci(push), check_triggers=check_triggers)
        except Ignored as exc:
            if delivery is not None:
                self.store.record_delivery(*delivery, None)
            return Outcome(None, False, str(exc))
        build_id, created = self.store.create_build(plan, delivery)
        if not created:
            return Outcome(build_id, False, "repeated delivery")
        if push.branch and not push.tag:
            for older in self.store.unfinished_builds(push.repo, push.branch, build_id):
                self.cancel(older, f"superseded by build {build_id}")
        self.start(build_id, delivery)
        return Outcome(build_id, True)

    def start(self, build_id: int, delivery: tuple[str, str] | None = None) -> None:
        """Report pending and enqueue the first jobs; raises BrokerUnavailable (the build then errors)."""
        build = self.store.build(build_id)
        if build is not None and build.finished_at is not None:  # an invalid ci.yml: it has errored already
            report_final(self.store, build, self.settings.public_url)
        elif build is not None:
            report_build(build, "queued", self.settings.public_url)
        try:
            advance(self.store, self.dispatcher, build_id, self.settings.public_url)
        except Exception as exc:
            log.error("build %s: cannot enqueue its jobs: %s", build_id, exc)
            self.store.request_cancel(build_id, f"the broker refused the jobs: {exc}")
            self.store.finish_build(build_id, "error", f"the broker refused the jobs: {exc}")
            failed = self.store.build(build_id)
            if failed is not None:
                report_final(self.store, failed, self.settings.public_url)
            if delivery is not None:
                self.store.forget_delivery(*delivery)
            raise BrokerUnavailable(
                f"the broker at {self.settings.broker_url} is unavailable: {exc}"
            ) from exc

    def cancel(self, build_id: int, reason: str = "canceled by a user") -> bool:
        """Cancel a build: queued jobs at once, running ones within 2 s (their workers poll the flag)."""
        if not self.store.request_cancel(build_id, reason):
            return False
        try:
            advance(self.store, self.dispatcher, build_id, self.settings.public_url)
        except Exception as exc:  # nothing is enqueued for a canceled build; settle failures are logged
            log.warning("build %s: %s", build_id, exc)
        return True

    def rerun(self, build_id: int) -> Outcome:
        """A new build of the same sha (every job runs again)."""
        build = self.store.build(build_id)
        if build is None:
            return Outcome(None, False, "no such build")
        push = Push(
            forge=build.forge, repo=build.repo, clone_url=build.repo_url, ref=build.ref, sha=build.sha,
            branch=build.branch, tag=build.tag, message=build.message, author=build.author, event=build.event,
        )  # fmt: skip
        return self.trigger(push, check_triggers=False)
