"""`runner up`: redis-server, the web app and a worker from one command; its printed `curl` builds the
current repository; Ctrl-C stops all of it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from server_helpers import make_repo

pytestmark = pytest.mark.kernel


def test_up_runs_the_whole_stack_and_its_curl_makes_a_build(tmp_path: Path) -> None:
    repo = tmp_path / "project"
    make_repo(repo, {"ci.yml": "jobs:\n  hi:\n    steps:\n      - run: echo hi from up\n"})
    env = {k: v for k, v in os.environ.items() if k not in ("RUNNER_BROKER_URL", "RUNNER_WEBHOOK_SECRET")}
    env |= {"RUNNER_HOME": str(tmp_path / "home"), "RUNNER_DATABASE_URL": f"sqlite:///{tmp_path / 'up.db'}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "up"], cwd=repo, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    output: list[str] = []
    found = threading.Event()

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if line.startswith("curl "):
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        assert found.wait(60), "".join(output)
        url = re.search(r"runner is up: (http://\S+)", "".join(output))
        assert url is not None, "".join(output)
        curl = next(line for line in output if line.startswith("curl "))
        answer = json.loads(
            subprocess.run(curl, shell=True, capture_output=True, text=True, check=True).stdout
        )
        build_id = answer["build_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            build = httpx.get(f"{url[1]}/api/builds/{build_id}").json()
            if build["finished_at"]:
                break
            time.sleep(0.1)
        assert build["status"] == "passed", build
        assert "hi from up" in httpx.get(f"{url[1]}/api/builds/{build_id}/jobs/hi/log").text
        broker = re.search(r"broker (redis://127\.0\.0\.1:(\d+)/0)", "".join(output))
        assert broker is not None
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        code = process.wait(timeout=30)
    assert code == 0, "".join(output)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url[1]}/healthz", timeout=2)
    with pytest.raises(OSError):
        import socket

        socket.create_connection(("127.0.0.1", int(broker[2])), timeout=1).close()
