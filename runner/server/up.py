"""`runner up`: redis-server (when no broker is configured), the web app and one worker, as children.

Made for trying the runner on one machine: it prints the URL and a ready-to-paste `curl` that posts
a signed GitHub push of the current repository (or a ping outside a repository). Ctrl-C stops all.
Redis runs with an append-only file under RUNNER_HOME so queued jobs survive its restart.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from runner.settings import runner_home

HOST, PORT = "127.0.0.1", 8000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.3):
            return True
    except OSError:
        return False


def _start_redis(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed (apt-get install redis-server) and no broker is set"
        )
    port = _free_port()
    data = home / "redis"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        binary, "--bind", HOST, "--port", str(port), "--dir", str(data), "--appendonly", "yes",
        "--appendfsync", "everysec", "--save", "", "--logfile", str(data / "redis.log"),
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not _listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start (see {data / 'redis.log'})")
        time.sleep(0.05)
    return process, f"redis://{HOST}:{port}/0"


def _git(*args: str) -> str:
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def sample_payload() -> tuple[str, bytes]:
    """(event, body): a GitHub push of the current repository's HEAD, else a ping."""
    top, sha, branch = (
        _git("rev-parse", "--show-toplevel"),
        _git("rev-parse", "HEAD"),
        _git("branch", "--show-current"),
    )
    if not (top and sha and branch and (Path(top) / "ci.yml").is_file()):
        return "ping", json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    payload = {
        "ref": f"refs/heads/{branch}", "before": "0" * 40, "after": sha, "created": False, "deleted": False,
        "repository": {"full_name": f"local/{Path(top).name}", "clone_url": f"file://{top}"},
        "head_commit": {"id": sha, "message": _git("log", "-1", "--format=%s"), "author": {"name": "you"}},
        "pusher": {"name": "you"},
    }  # fmt: skip
    return "push", json.dumps(payload).encode()


def curl_command(url: str, secret: str) -> str:
    event, body = sample_payload()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return (
        f"curl -sS -X POST {url}/hooks/github -H 'Content-Type: application/json' "
        f"-H 'X-GitHub-Event: {event}' -H 'X-GitHub-Delivery: {secrets.token_hex(8)}' "
        f"-H 'X-Hub-Signature-256: {signature}' --data-binary {shlex.quote(body.decode())}"
    )


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in reversed(children):
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def up_main(args: argparse.Namespace) -> int:
    home = runner_home()
    env = dict(os.environ)
    children: list[subprocess.Popen[bytes]] = []
    host = getattr(args, "host", None) or HOST
    port = getattr(args, "port", None) or (PORT if not _listening(PORT) else _free_port())  # 8000 if free
    try:
        if not env.get("RUNNER_BROKER_URL"):
            redis, env["RUNNER_BROKER_URL"] = _start_redis(home)
            children.append(redis)
        if not env.get("RUNNER_WEBHOOK_SECRET"):
            env["RUNNER_WEBHOOK_SECRET"] = secrets.token_hex(16)
        url = f"http://{HOST if host in ('0.0.0.0', '::') else host}:{port}"
        env.setdefault("RUNNER_PUBLIC_URL", url)
        env.setdefault("RUNNER_ALLOW_LOCAL_REPOS", "1")  # the printed curl builds this checkout, by file://
        runner = [sys.executable, "-m", "runner.cli"]
        children.append(subprocess.Popen([*runner, "serve", "--host", host, "--port", str(port)], env=env))
        children.append(subprocess.Popen([*runner, "worker", "--concurrency", "1"], env=env))
        deadline = time.monotonic() + 30
        while not _listening(port):
            if any(c.poll() is not None for c in children) or time.monotonic() > deadline:
                raise RuntimeError("the web server did not start (see the messages above)")
            time.sleep(0.1)
        print(f"\nrunner is up: {url}  (broker {env['RUNNER_BROKER_URL']}; Ctrl-C stops it all)")
        print(f"webhook secret: {env['RUNNER_WEBHOOK_SECRET']}")
        print("send a signed test webhook:\n")
        print(curl_command(url, env["RUNNER_WEBHOOK_SECRET"]) + "\n", flush=True)
        while all(c.poll() is None for c in children):
            time.sleep(0.5)
        print("runner: error: a part of the stack stopped; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nrunner: stopping", file=sys.stderr)
        return 0
    except (RuntimeError, OSError) as exc:
        print(f"runner: error: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop(children)
