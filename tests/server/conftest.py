"""Server tests: a real redis-server, real git repositories, the app over a real SQLite file (or the
PostgreSQL at RUNNER_TEST_POSTGRES_URL, when set, for the store tests)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers.redis_server import redis_url

__all__ = ["redis_url"]
