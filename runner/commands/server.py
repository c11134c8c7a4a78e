"""`runner serve`, `runner worker` and `runner up` (contract.md §1): the server side of the runner.

Heavy modules (FastAPI, uvicorn, Celery, SQLAlchemy) are imported inside the handlers. Errors reach
the user as one line (`runner: error: ...`), never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_ERROR = 1


def _error(message: str) -> int:
    print(f"runner: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _cannot_listen(host: str, port: int) -> str:
    """Why the address cannot be bound ('' when it can): checked first for a one-line error."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def serve(args: argparse.Namespace) -> int:
    """The web app under uvicorn: webhooks, pages, the JSON API."""
    from runner.server.db import StoreError
    from runner.server.settings import ServerSettings

    settings = ServerSettings.from_env()
    problem = _cannot_listen(args.host, args.port)
    if problem:
        return _error(f"cannot listen on {args.host}:{args.port}: {problem} (choose another --port)")
    if not settings.webhook_secret:
        print("runner: warning: RUNNER_WEBHOOK_SECRET is not set: every webhook is refused", file=sys.stderr)
    try:
        import uvicorn

        from runner.server.app import create_app

        app = create_app(settings)
    except StoreError as exc:
        return _error(str(exc))
    print(f"runner: serving on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    except OSError as exc:
        return _error(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    return 0


def worker(args: argparse.Namespace) -> int:
    """A Celery worker with the runner's defaults; sweeps what a crashed worker left first."""
    from runner.sandbox.records import sweep
    from runner.server.db import StoreError, make_engine, migrate
    from runner.server.queue import DEFAULT_QUEUE
    from runner.server.settings import ServerSettings
    from runner.settings import Paths, concurrency

    settings = ServerSettings.from_env()
    try:
        swept = sweep(Paths.default())
    except OSError as exc:
        return _error(f"cannot sweep leftover containers under {Paths.default().run}: {exc}")
    if swept:
        plural = "s" if len(swept) != 1 else ""
        print(f"runner: swept {len(swept)} leftover{plural} of crashed runs", file=sys.stderr, flush=True)
    try:
        migrate(make_engine(settings.database_url))
    except StoreError as exc:
        return _error(str(exc))
    from workers.app import app

    # Celery's pool processes are big: each forks its containers through a small zygote (sandbox/zygote.py)
    os.environ.setdefault("RUNNER_ZYGOTE", "1")
    queues = args.queues or DEFAULT_QUEUE
    argv = [
        "worker",
        "--loglevel=INFO",
        f"--concurrency={args.concurrency or concurrency()}",
        f"--queues={queues}",
        "--prefetch-multiplier=1",
        "-O",
        "fair",
        f"--hostname=runner-{os.getpid()}@%h",
    ]
    app.worker_main(argv)
    return 0


def up(args: argparse.Namespace) -> int:
    """The whole stack on one machine: redis-server (when no broker is set), the web app, one worker."""
    from runner.server.up import up_main

    return up_main(args)
