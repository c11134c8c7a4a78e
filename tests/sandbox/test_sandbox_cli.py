"""`runner sandbox` as a user runs it: exit codes, reasons on stderr, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def sandbox(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RUNNER_HOME=str(tmp_path / "home"))
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", "sandbox", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.mark.kernel
def test_exit_code_and_output(tmp_path):
    proc = sandbox(tmp_path, "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, "out\n", "err\n")


@pytest.mark.kernel
def test_timeout_is_124(tmp_path):
    proc = sandbox(tmp_path, "--timeout", "500ms", "--", "sleep", "30")
    assert proc.returncode == 124
    assert proc.stderr.strip().endswith("timeout")


@pytest.mark.kernel
def test_oom_is_137(tmp_path):
    proc = sandbox(tmp_path, "--memory", "48M", "--", "python3", "-c", "x = bytearray(400 << 20)")
    assert proc.returncode == 137
    assert proc.stderr.strip().endswith("oom")


@pytest.mark.kernel
def test_workspace_env_and_network_host(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    proc = sandbox(
        tmp_path,
        "--workspace",
        str(ws),
        "--env",
        "A=b",
        "--network",
        "host",
        "--",
        "sh",
        "-c",
        "echo $A > f; pwd",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "/workspace\n"
    assert (ws / "f").read_text() == "b\n"


@pytest.mark.kernel
def test_command_not_found_is_127(tmp_path):
    proc = sandbox(tmp_path, "--", "definitely-not-a-command")
    assert proc.returncode == 127
    assert "command not found" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory", "12Q"], "invalid size '12Q'"),
        (["--cpus", "lots"], "invalid CPU amount"),
        (["--cpus", "0"], "must be greater than 0"),
        (["--pids", "many"], "invalid --pids"),
        (["--timeout", "soon"], "invalid duration"),
        (["--network", "wifi"], "invalid --network"),
        (["--workspace", "/does/not/exist"], "does not exist"),
        (["--env", "=x"], "invalid --env"),
    ],
)
def test_runner_errors_are_one_line_and_125(tmp_path, args, message):
    proc = sandbox(tmp_path, *args, "--", "true")
    assert proc.returncode == 125
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_missing_command_is_125(tmp_path):
    proc = sandbox(tmp_path)
    assert proc.returncode == 125
    assert "no command given" in proc.stderr


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys, runner.cli\n"
        "try:\n    runner.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pydantic', 'jinja2', 'rich', 'celery', 'junitparser', 'git', 'httpx',"
        " 'runner.sandbox') if m in sys.modules]\n"
        "print(heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.stderr.strip() == "[]"


@pytest.mark.kernel
def test_image_from_the_store(tmp_path):
    from runner.images.build import Builder
    from runner.settings import Paths

    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM host\nENV FROM_IMAGE=yes\nRUN echo built > /marker\n")
    Builder(Paths(tmp_path / "home"), out=lambda line: None).build_dockerfile(
        context / "Dockerfile", context, tag="sandbox-test:1"
    )
    proc = sandbox(tmp_path, "--image", "sandbox-test:1", "--", "sh", "-c", "cat /marker; echo $FROM_IMAGE")
    assert (proc.returncode, proc.stdout) == (0, "built\nyes\n"), proc.stderr
    proc = sandbox(tmp_path, "--image", "Not A Ref", "--", "true")
    assert proc.returncode == 125 and "invalid image reference" in proc.stderr


@pytest.mark.kernel
def test_image_user_workdir_and_entrypoint_apply_as_in_docker_run(tmp_path):
    from runner.images.build import Builder
    from runner.settings import Paths

    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        'FROM host\nRUN mkdir -p /srv/app\nWORKDIR /srv/app\nUSER nobody\nENTRYPOINT ["/bin/sh", "-c"]\n'
    )
    Builder(Paths(tmp_path / "home"), out=lambda line: None).build_dockerfile(
        context / "Dockerfile", context, tag="defaults:1"
    )
    proc = sandbox(tmp_path, "--image", "defaults:1", "--", "id -un; pwd")
    assert (proc.returncode, proc.stdout) == (0, "nobody\n/srv/app\n"), proc.stderr
