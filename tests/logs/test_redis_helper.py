"""The redis-server helper itself: it starts, answers, keeps data across a restart with AOF, and stops."""

from __future__ import annotations

from pathlib import Path

import redis
from helpers.redis_server import _ping, start_redis


def test_fixture_serves_a_real_redis(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert redis_url.startswith("redis://127.0.0.1:")
    client.set("k", "v")
    assert client.get("k") == b"v"
    assert client.config_get("bind")["bind"] == "127.0.0.1"


def test_restart_on_same_port_keeps_appendonly_data(tmp_path: Path) -> None:
    url, stop = start_redis(tmp_path, appendonly=True)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    redis.Redis.from_url(url).set("survives", "yes")
    stop()
    stop()  # idempotent
    assert not _ping(port)
    url2, stop2 = start_redis(tmp_path, port=port, appendonly=True)
    try:
        assert url2 == url
        assert redis.Redis.from_url(url2).get("survives") == b"yes"
    finally:
        stop2()
