"""Worker tests: the whole stack as real processes (redis-server, `runner serve`, `runner worker`)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers.redis_server import redis_url

__all__ = ["redis_url"]
