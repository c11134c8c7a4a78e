"""Log tests: the real redis-server fixture from tests/helpers."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.redis_server import redis_url

__all__ = ["redis_url"]
