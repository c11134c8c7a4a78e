"""The server side of the runner: webhooks, the build store, the JSON API, pages, badges and metrics.

`create_app(settings)` in `runner.server.app` builds the FastAPI application; the workers share the
store (`runner.server.store`) and the scheduling rules (`runner.server.scheduler`) with it.

Operating notes (settings beyond contract.md §4 are optional):

- Redis as broker must keep what it was given across a restart, or queued jobs are lost with it:
  run it with `appendonly yes` (`appendfsync everysec` loses at most a second; `always` nothing)
  and `maxmemory-policy noeviction`. `runner up` starts its redis-server that way.
- A job is claimed in the store under a lease its worker renews (RUNNER_JOB_LEASE, 30 s). When a
  worker dies, the web server sends its jobs again once their lease lapses; the broker's own
  redelivery (RUNNER_VISIBILITY_TIMEOUT, 6 h, above any job timeout) is the second line. Claims
  make every duplicate message harmless: a job never runs twice at once, a finished job never again.
- Cancellation is a flag in the store that a running job's worker polls every 0.25 s, so it works
  on any broker. A push cancels the unfinished builds of the same branch it supersedes.
- A job's first `labels:` entry is its queue (default `runner`): `runner worker --queues gpu`.
- RUNNER_PUBLIC_URL (links in commit statuses), RUNNER_REDIS_URL (live logs, default: the broker),
  RUNNER_WEBHOOK_BODY_LIMIT (bytes, default 5 MiB); commit statuses use RUNNER_<FORGE>_URL and
  RUNNER_<FORGE>_TOKEN (`runner.forges.status`).
"""
