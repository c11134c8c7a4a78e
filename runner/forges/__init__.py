"""Forges (GitHub, GitLab, Gitea/Forgejo): webhook signatures, push payloads, branch filters, commit status.

The web app calls `verify_signature` on the raw body first, then `parse_event`; workers report commit
status through `reporter_for(forge)`. Nothing here touches the network except `status`.
"""

from runner.forges.events import FORGES, Forge, Ignored, PayloadError, Ping, PushEvent
from runner.forges.filters import branch_matches, skip_requested
from runner.forges.payloads import parse_event
from runner.forges.signatures import verify_signature
from runner.forges.status import StatusReporter, reporter_for

__all__ = [
    "FORGES",
    "Forge",
    "Ignored",
    "PayloadError",
    "Ping",
    "PushEvent",
    "StatusReporter",
    "branch_matches",
    "parse_event",
    "reporter_for",
    "skip_requested",
    "verify_signature",
]
