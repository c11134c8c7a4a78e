"""The FastAPI application: `create_app(settings)` wires the store, the broker client and the routes.

The schema is migrated when the app is created, so a fresh RUNNER_HOME works on first start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from runner.server import api, badge, pages, webhooks
from runner.server.builds import BuildService
from runner.server.db import make_engine, migrate, session_factory
from runner.server.metrics import Metrics
from runner.server.queries import BuildQueries
from runner.server.queue import Dispatcher
from runner.server.recovery import RecoveryLoop
from runner.server.settings import ServerSettings
from runner.server.store import BuildStore

THREADS = 256  # threads for blocking work: webhooks, API reads, live log streams


class Backends:
    """Log stream and storage, made on first use (the web process needs them only for logs)."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings

    @cached_property
    def logs(self) -> Any:
        from runner.logs import LogStream

        return LogStream(self.settings.redis_url)

    @cached_property
    def storage(self) -> Any:
        from runner.logs.storage import DirectoryStorage

        return DirectoryStorage(self.settings.storage_root)


def create_app(settings: ServerSettings | None = None, dispatcher: Dispatcher | None = None) -> FastAPI:
    settings = settings or ServerSettings.from_env()
    engine = make_engine(settings.database_url)
    migrate(engine)
    sessions = session_factory(engine)
    store = BuildStore(sessions)
    queries = BuildQueries(sessions)
    dispatcher = dispatcher or Dispatcher(settings)
    backends = Backends(settings)

    recovery = RecoveryLoop(store, dispatcher, settings.lease, settings.public_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread

        # Live logs hold a worker thread while they wait on Redis: leave room for webhooks.
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        recovery.start()
        try:
            yield
        finally:
            recovery.stop()
            engine.dispose()  # give the database its connections back (PostgreSQL counts them)

    app = FastAPI(
        lifespan=lifespan,
        title="runner",
        description="Webhooks, builds, logs, tests and artifacts of the runner CI.",
        version="1",
    )
    app.state.settings = settings
    app.state.service = BuildService(settings, store, dispatcher)
    app.state.queries = queries
    app.state.metrics = Metrics(queries, dispatcher)
    app.state.engine = engine

    app.state.backends = backends

    app.include_router(webhooks.router)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(badge.router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        from sqlalchemy import text

        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "webhooks": bool(settings.webhook_secret), "api": bool(settings.api_token)}

    @app.get("/metrics", tags=["ops"])
    def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    return app
