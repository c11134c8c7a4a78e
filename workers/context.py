"""What a worker process holds on to between jobs: settings, the store, the broker client, logs.

Built on first use inside the process that runs tasks (after a prefork pool has forked), so that
no database connection or socket is ever shared between processes.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from runner.server.db import make_engine, migrate, session_factory
from runner.server.queue import Dispatcher
from runner.server.settings import ServerSettings
from runner.server.store import BuildStore


@dataclass
class WorkerContext:
    settings: ServerSettings

    @cached_property
    def store(self) -> BuildStore:
        engine = make_engine(self.settings.database_url)
        migrate(engine)
        return BuildStore(session_factory(engine))

    @cached_property
    def dispatcher(self) -> Dispatcher:
        from workers.app import app

        return Dispatcher(self.settings, app)

    @cached_property
    def mirrors(self) -> Any:
        from runner.sources.mirror import Mirrors

        return Mirrors(self.settings.paths)

    @cached_property
    def logs(self) -> Any:
        from runner.logs import LogStream

        return LogStream(self.settings.redis_url)

    @cached_property
    def storage(self) -> Any:
        from runner.logs.storage import DirectoryStorage

        return DirectoryStorage(self.settings.storage_root)

    @cached_property
    def recorder(self) -> Any:
        from runner.logs import LogRecorder

        return LogRecorder(self.logs, self.storage)

    @property
    def name(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"


_lock = threading.Lock()
_context: dict[int, WorkerContext] = {}


def context() -> WorkerContext:
    """The context of this process (a forked child builds its own)."""
    pid = os.getpid()
    with _lock:
        if pid not in _context:
            _context.clear()
            _context[pid] = WorkerContext(ServerSettings.from_env())
        return _context[pid]
