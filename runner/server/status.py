"""Commit status back to the forge: pending when a build is queued, its outcome when it settles.

A status that cannot be sent never fails a build: the reporter's error becomes one log line.
"""

from __future__ import annotations

import logging

from runner.server.models import Build

log = logging.getLogger("runner.server.status")
CONTEXT = "runner"
# Build statuses as `runner.forges.status` takes them (it maps them to each forge's own states:
# GitLab gets `canceled`, GitHub and Gitea `error`); the description says which it was.
DESCRIPTIONS = {
    "queued": "the build is queued",
    "running": "the build is running",
    "passed": "the build passed",
    "failed": "the build failed",
    "error": "the build errored (the runner's fault or an invalid ci.yml)",
    "canceled": "the build was canceled",
}


def report_build(build: Build, status: str, public_url: str) -> None:
    """Send the forge the state matching the build `status`; never raises."""
    if build.forge not in ("github", "gitlab", "gitea"):
        return
    state = status if status in DESCRIPTIONS else "error"
    try:
        from runner.forges.status import reporter_for

        reporter = reporter_for(build.forge)
        if reporter is None:
            return
        target = f"{public_url}/builds/{build.id}"
        reporter.report(build.repo, build.sha, state, CONTEXT, DESCRIPTIONS[state], target)
    except Exception as exc:
        log.warning("commit status for build %s not sent: %s", build.id, exc)
