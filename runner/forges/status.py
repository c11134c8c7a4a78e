"""Commit status back to the forge (GitHub statuses, GitLab commit status, Gitea statuses), never raising."""

from __future__ import annotations

import logging
import os
import time
from typing import Any
from urllib.parse import quote

import httpx

from runner.forges.events import FORGES, Forge

log = logging.getLogger(__name__)

# Our words (build and job statuses included) -> each forge's own state names.
STATES: dict[Forge, dict[str, str]] = {
    "github": {
        "pending": "pending", "queued": "pending", "running": "pending",
        "success": "success", "passed": "success",
        "failure": "failure", "failed": "failure",
        "error": "error", "canceled": "error", "cancelled": "error",
    },
    "gitlab": {
        "pending": "pending", "queued": "pending", "running": "running",
        "success": "success", "passed": "success",
        "failure": "failed", "failed": "failed", "error": "failed",
        "canceled": "canceled", "cancelled": "canceled", "skipped": "skipped",
    },
    "gitea": {
        "pending": "pending", "queued": "pending", "running": "pending",
        "success": "success", "passed": "success",
        "failure": "failure", "failed": "failure",
        "error": "error", "canceled": "error", "cancelled": "error", "warning": "warning",
    },
}  # fmt: skip

DEFAULT_URLS: dict[Forge, str | None] = {
    "github": "https://api.github.com",
    "gitlab": "https://gitlab.com",
    "gitea": None,
}
DESCRIPTION_LIMIT = 140  # GitHub refuses longer descriptions; the others accept it


class StatusReporter:
    """Posts commit statuses for one forge; `report` retries 5xx, 429 and network errors with backoff."""

    def __init__(
        self,
        forge: str,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        attempts: int = 4,
        backoff: float = 0.5,
    ) -> None:
        if forge not in FORGES:
            raise ValueError(f"unknown forge {forge!r}: expected one of {', '.join(FORGES)}")
        self.forge: Forge = forge
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff

    def url(self, repo: str, sha: str) -> str:
        """The endpoint of a commit's statuses. GitLab wants the project path as one encoded segment."""
        if self.forge == "gitlab":
            return f"{self.base_url}/api/v4/projects/{quote(repo, safe='')}/statuses/{quote(sha, safe='')}"
        path = "/".join(quote(part, safe="") for part in repo.strip("/").split("/"))
        prefix = "/api/v1" if self.forge == "gitea" else ""
        return f"{self.base_url}{prefix}/repos/{path}/statuses/{quote(sha, safe='')}"

    def headers(self) -> dict[str, str]:
        common = {"Accept": "application/json", "User-Agent": "runner-ci"}
        if self.forge == "github":
            return {
                **common,
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self.token}",
                "X-GitHub-Api-Version": "2022-11-28",
            }
        if self.forge == "gitlab":
            return {**common, "PRIVATE-TOKEN": self.token}
        return {**common, "Authorization": f"token {self.token}"}

    def payload(self, state: str, context: str, description: str, target_url: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"state": state, "description": description[:DESCRIPTION_LIMIT]}
        body["name" if self.forge == "gitlab" else "context"] = context
        if target_url:
            body["target_url"] = target_url
        return body

    def report(
        self,
        repo: str,
        sha: str,
        state: str,
        context: str,
        description: str = "",
        target_url: str | None = None,
    ) -> bool:
        """Set the status `context` of `repo`@`sha`; True when the forge accepted it. Never raises."""
        try:
            return self._report(repo, sha, state, context, description, target_url)
        except Exception:  # a status is a courtesy: it must never break a build
            log.exception("commit status %s %s@%s: unexpected failure", self.forge, repo, sha[:12])
            return False

    def _report(
        self, repo: str, sha: str, state: str, context: str, description: str, target_url: str | None
    ) -> bool:
        forge_state = STATES[self.forge].get(state.lower())
        if forge_state is None:
            log.error("commit status %s: state %r has no %s equivalent", repo, state, self.forge)
            return False
        url = self.url(repo, sha)
        body = self.payload(forge_state, context, description, target_url)
        with httpx.Client(timeout=self.timeout, headers=self.headers()) as client:
            for attempt in range(self.attempts):
                last = attempt == self.attempts - 1
                try:
                    response = client.post(url, json=body)
                except httpx.HTTPError as error:
                    log.warning("commit status %s: %s (attempt %d)", url, error, attempt + 1)
                    if last:
                        return False
                else:
                    if response.is_success:
                        return True
                    retryable = response.status_code >= 500 or response.status_code == 429
                    log.warning(
                        "commit status %s: HTTP %d %s (attempt %d)",
                        url,
                        response.status_code,
                        response.text[:200],
                        attempt + 1,
                    )
                    if not retryable or last:
                        return False
                time.sleep(self.backoff * (2**attempt))
        return False


def reporter_for(forge: str) -> StatusReporter | None:
    """A reporter from RUNNER_<FORGE>_URL and RUNNER_<FORGE>_TOKEN; None when the forge is not configured."""
    if forge not in FORGES:
        return None
    prefix = f"RUNNER_{forge.upper()}_"
    token = os.environ.get(prefix + "TOKEN", "").strip()
    base = os.environ.get(prefix + "URL", "").strip() or DEFAULT_URLS[forge]
    if not token or not base:
        return None
    return StatusReporter(forge, base, token)
