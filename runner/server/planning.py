"""From a push to a build plan: read ci.yml at the pushed sha, apply `on:`, list the jobs.

The plan needs only the job graph (names, needs, labels, `if:`); the worker compiles the same
ci.yml again against the checked-out workspace (as `runner exec` does) to get each job's steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.server.store import BuildPlan, JobPlan

CI_FILE = "ci.yml"


@dataclass
class Push:
    """What a build is made from: a forge's push event, or a manual trigger."""

    forge: str
    repo: str
    clone_url: str
    ref: str
    sha: str
    branch: str = ""
    tag: str = ""
    message: str = ""
    author: str = ""
    event: str = "push"

    def git_context(self) -> dict[str, str]:
        return {
            "branch": self.branch,
            "tag": self.tag,
            "sha": self.sha,
            "event": self.event,
            "repo": self.repo,
        }


class Ignored(Exception):
    """The push makes no build; the message is the reason given to the forge."""


def _matches(patterns: tuple[str, ...], name: str) -> bool:
    from runner.forges import branch_matches

    return bool(branch_matches(list(patterns), name))


def plan_build(push: Push, ci_text: str | None, *, check_triggers: bool = True) -> BuildPlan:
    """The build of `push` given the ci.yml text at its sha; raises Ignored when `on:` filters it out.

    An invalid ci.yml still makes a build: one that has errored with the config's message, so the
    author sees why nothing ran.
    """
    from runner.config import ConfigError, EvalContext, compile_pipeline, load

    plan = BuildPlan(
        forge=push.forge, repo=push.repo, repo_url=push.clone_url, ref=push.ref, sha=push.sha,
        branch=push.branch, tag=push.tag, event=push.event, message=push.message, author=push.author,
    )  # fmt: skip
    if ci_text is None:
        raise Ignored(f"no {CI_FILE} at {push.sha[:12]}")
    try:
        spec = compile_pipeline(load(Path(CI_FILE), text=ci_text), EvalContext(git=push.git_context()))
    except ConfigError as exc:
        plan.status, plan.reason = (
            "error",
            str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid",
        )
        return plan
    if check_triggers:
        if push.tag and not _matches(spec.triggers.tags, push.tag):
            raise Ignored(f"tag {push.tag} is not in on.push.tags")
        if not push.tag and not _matches(spec.triggers.branches, push.branch):
            raise Ignored(f"branch {push.branch} is not in on.push.branches")
    plan.jobs = [
        JobPlan(
            name=job.name,
            needs=list(job.needs),
            labels=list(job.labels),
            condition=job.condition,
            allow_failure=job.allow_failure,
        )
        for job in spec.jobs
    ]
    if not plan.jobs:
        plan.status, plan.reason = "passed", "the pipeline has no jobs"
    return plan
