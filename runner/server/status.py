"""Commit status back to the forge: pending when a build is queued, its outcome when it settles.

A status that cannot be sent never fails a build: the reporter's error becomes one log line. A final
status is marked sent in the store only after the forge took it (`report_final`); the server's
recovery loop sends those that were not (`recovery.report_lost_statuses`).
"""

from __future__ import annotations

import logging

from runner.server.models import Build
from runner.server.store import BuildStore

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


def report_build(build: Build, status: str, public_url: str) -> bool:
    """Send the forge the state matching the build `status`; never raises.

    True when the forge took it or there was nothing to send (a build of the API, a forge without
    a token); False when the send failed, so that the caller leaves the status to send again.
    """
    if build.forge not in ("github", "gitlab", "gitea"):
        return True
    state = status if status in DESCRIPTIONS else "error"
    try:
        from runner.forges.status import reporter_for

        reporter = reporter_for(build.forge)
        if reporter is None:
            return True
        target = f"{public_url}/builds/{build.id}"
        if reporter.report(build.repo, build.sha, state, CONTEXT, DESCRIPTIONS[state], target):
            return True
        log.warning("commit status %s for build %s not sent: %s refused it", state, build.id, build.forge)
    except Exception as exc:
        log.warning("commit status %s for build %s not sent: %s", state, build.id, exc)
    return False


def report_final(store: BuildStore, build: Build, public_url: str) -> bool:
    """Send a finished build's status, then mark it sent (in that order: a crash between the two
    sends it again, which the forge takes harmlessly, rather than never)."""
    if not report_build(build, build.status, public_url):
        return False
    store.status_reported(build.id, build.status)
    return True
