"""A real `redis-server` on a free 127.0.0.1 port for tests: `start_redis` and the `redis_url` fixture.

Use it from a conftest.py beside the tests (tests/ has no __init__.py, so put tests/ on sys.path):

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from helpers.redis_server import redis_url  # the fixture, re-exported to the tests of that folder

The server keeps its files (and, with `appendonly=True`, its append-only log) in a directory under
`tmp_path`, so a test may stop it and start it again on the same port and directory to simulate a
restart: `start_redis(tmp_path, port=old_port, appendonly=True)`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(
    tmp_path: Path,
    *,
    port: int | None = None,
    appendonly: bool = False,
    extra_args: Sequence[str] = (),
) -> tuple[str, Callable[[], None]]:
    """Start `redis-server` on 127.0.0.1; return `(url, stop)`. `stop()` is idempotent and bounded in time.

    Fails the test (never skips) when redis-server is missing or does not answer within START_TIMEOUT.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: apt-get install -y redis-server")
    attempts = 1 if port is not None else 3
    last_error = ""
    for _ in range(attempts):
        chosen = port if port is not None else free_port()
        data_dir = tmp_path / f"redis-{chosen}"
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(chosen),
            "--dir", str(data_dir),
            "--save", "",
            "--appendonly", "yes" if appendonly else "no",
            "--appendfsync", "always",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", str(data_dir / "redis.log"),
            *extra_args,
        ]  # fmt: skip
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if _ping(chosen):
                return f"redis://127.0.0.1:{chosen}/0", _stopper(process)
            time.sleep(0.02)
        _stopper(process)()
        log = data_dir / "redis.log"
        last_error = log.read_text(errors="replace")[-1000:] if log.exists() else "(no log)"
    pytest.fail(f"redis-server did not start on 127.0.0.1: {last_error}")


def _stopper(process: subprocess.Popen[bytes]) -> Callable[[], None]:
    def stop() -> None:
        if process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    return stop


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """The URL (`redis://127.0.0.1:PORT/0`) of a fresh redis-server, stopped when the test ends."""
    url, stop = start_redis(tmp_path)
    try:
        yield url
    finally:
        stop()
