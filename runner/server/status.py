"""Commit status back to the forge: pending when a build is queued, its outcome when it settles.

A status that cannot be sent never fails a build: the reporter's error becomes one log line.
"""

from __future__ import annotations

import logging

from runner.server.models import Build

log = logging.getLogger("runner.server.status")
CONTEXT = "runner"
STATES = {
    "queued": "pending",
    "running": "pending",
    "passed": "success",
    "failed": "failure",
    "error": "error",
    "canceled": "error",
    "skipped": "success",
}
DESCRIPTIONS = {
    "pending": "the build is running",
    "success": "the build passed",
    "failure": "the build failed",
    "error": "the build errored or was canceled",
}


def report_build(build: Build, status: str, public_url: str) -> None:
    """Send the forge the state matching `status`; never raises."""
    if build.forge not in ("github", "gitlab", "gitea"):
        return
    state = STATES.get(status, "error")
    try:
        from runner.forges.status import reporter_for

        reporter = reporter_for(build.forge)
        if reporter is None:
            return
        description = DESCRIPTIONS[state] if status != "canceled" else "the build was canceled"
        reporter.report(build.repo, build.sha, state, CONTEXT, description, f"{public_url}/builds/{build.id}")
    except Exception as exc:
        log.warning("commit status for build %s not sent: %s", build.id, exc)
