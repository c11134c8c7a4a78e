"""`runner exec` end to end: real git repositories, the real engine and real containers."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from exec_helpers import git, make_repo, runner_env, runner_exec, tree_state

pytestmark = pytest.mark.kernel

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"

PIPELINE = """
    env: {PYTHONUNBUFFERED: "1"}
    jobs:
      build:
        steps:
          - name: show
            run: |
              cat tracked.txt
              cat untracked.txt
              test ! -e ignored.log && echo "no ignored file"
              test ! -e .runner && echo "no .runner"
              echo "extra=$EXTRA"
              echo "changed by the job" > tracked.txt
              mkdir -p dist reports && echo wheel > dist/app.whl
              printf '<testsuite name="s"><testcase classname="c" name="ok"/></testsuite>' > reports/j.xml
        artifacts: [dist/*.whl]
        reports: {junit: [reports/*.xml]}
      test:
        needs: [build]
        matrix: {n: ["1", "2"]}
        steps:
          - run: echo "test $N extra=$EXTRA"
        env: {N: "${{ matrix.n }}"}
      lint:
        allow_failure: true
        steps:
          - run: exit 3
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path, PIPELINE, {"tracked.txt": "committed\n", ".gitignore": "*.log\n"})
    (repo / "tracked.txt").write_text("uncommitted change\n")
    (repo / "untracked.txt").write_text("untracked, not ignored\n")
    (repo / "ignored.log").write_text("ignored\n")
    return repo


def read_log(run_dir: Path, job: str) -> list[str]:
    return [line[13:] for line in (run_dir / "logs" / f"{job}.log").read_text().splitlines()]


def test_passing_pipeline_writes_the_run_directory(repo: Path, tmp_path: Path) -> None:
    before = tree_state(repo)
    result = runner_exec(repo, "--env", "EXTRA=yes", home=tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    run_dir = repo / ".runner" / "runs" / "1"
    assert result.stdout.splitlines()[-1] == "report: .runner/runs/1/report.html"
    assert "[build] uncommitted change" in result.stdout.splitlines()
    build_log = read_log(run_dir, "build")
    for line in (
        "uncommitted change",
        "untracked, not ignored",
        "no ignored file",
        "no .runner",
        "extra=yes",
    ):
        assert line in build_log
    assert "test 2 extra=yes" in read_log(run_dir, "test (n: 2)")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "passed" and summary["repo"] == "proj"
    assert summary["git"] == {"branch": "main", "sha": git(repo, "rev-parse", "HEAD")}
    jobs = {job["name"]: job for job in summary["jobs"]}
    assert set(jobs) == {"build", "test (n: 1)", "test (n: 2)", "lint"}
    assert jobs["lint"]["status"] == "failed" and jobs["lint"]["allow_failure"] is True
    assert jobs["build"]["artifacts"] == [{"path": "dist/app.whl", "size": 6}]
    assert jobs["build"]["tests"]["passed"] == 1 and summary["tests"]["total"] == 1
    assert (run_dir / "artifacts" / "build" / "dist" / "app.whl").read_text() == "wheel\n"
    assert 'name="ok"' in (run_dir / "junit.xml").read_text()
    assert "test (n: 1)" in (run_dir / "report.html").read_text()
    assert tree_state(repo) == before, "the run changed the user's tree"
    assert git(repo, "status", "--porcelain", "--ignored", ".runner") == "!! .runner/"
    second = runner_exec(repo, "--job", "build", home=tmp_path / "home")
    assert second.returncode == 0 and (repo / ".runner" / "runs" / "2" / "summary.json").is_file()
    assert not list((tmp_path / "home" / "tmp").glob("exec-*")), "the workspace copy is removed"


def test_failing_required_job_exits_1(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        """
        jobs:
          build: {steps: [{run: "echo building; exit 4"}]}
          test: {needs: [build], steps: [{run: echo never}]}
        """,
    )
    result = runner_exec(repo, home=tmp_path / "home")
    assert result.returncode == 1, result.stderr
    summary = json.loads((repo / ".runner" / "runs" / "1" / "summary.json").read_text())
    assert [(job["name"], job["status"]) for job in summary["jobs"]] == [
        ("build", "failed"),
        ("test", "skipped"),
    ]
    assert summary["jobs"][0]["steps"][0]["exit_code"] == 4
    assert "[build] ✗ " in result.stdout


def test_job_selection_json_and_out(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        """
        jobs:
          a: {steps: [{run: echo a}]}
          b: {needs: [a], steps: [{run: echo b}]}
          c: {steps: [{run: echo c}]}
        """,
    )
    out = tmp_path / "results"
    result = runner_exec(repo, "--job", "b", "--json", "--out", str(out), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)  # stdout is the summary and nothing else
    assert printed == json.loads((out / "summary.json").read_text())
    assert [job["name"] for job in printed["jobs"]] == ["a", "b"]
    assert "[b] b" in result.stderr.splitlines()  # live output moved to stderr
    assert not (repo / ".runner").exists()


def test_secrets_are_masked_in_every_output(tmp_path: Path) -> None:
    token = "tok-3f9a8b7c6d5e"
    repo = make_repo(
        tmp_path,
        """
        jobs:
          deploy:
            secrets: [TOKEN]
            steps:
              - run: |
                  echo "raw $TOKEN"
                  printf %s "$TOKEN" | base64
                  echo "len ${#TOKEN}"
                  mkdir -p reports
                  {
                    printf '<testsuite name="s"><testcase classname="c" name="uses %s">' "$TOKEN"
                    printf '<failure message="token was %s">trace %s</failure>' "$TOKEN" "$TOKEN"
                    printf '<system-out>out %s</system-out></testcase></testsuite>' "$TOKEN"
                  } > reports/junit.xml
            reports: {junit: [reports/junit.xml]}
        """,
    )
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"# deploy key\nexport TOKEN='{token}'\n")
    result = runner_exec(repo, "--secrets-file", str(secrets), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    run_dir = repo / ".runner" / "runs" / "1"
    everything = result.stdout + result.stderr
    for path in run_dir.rglob("*"):
        if path.is_file():
            everything += path.read_text(errors="replace")
    assert token not in everything
    assert base64.b64encode(token.encode()).decode() not in everything
    assert "raw ***" in read_log(run_dir, "deploy")
    assert "len 16" in read_log(run_dir, "deploy")
    assert "token was ***" in (run_dir / "junit.xml").read_text()  # test results are output too


def test_ctrl_c_cancels_cleanly(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        """
        jobs:
          slow: {steps: [{name: sleep, run: "echo step-is-running; sleep 59.173"}]}
          after: {needs: [slow], steps: [{run: echo never}]}
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "exec"],
        cwd=repo,
        env=runner_env(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = repo / ".runner" / "runs" / "1" / "logs" / "slow.log"
    deadline = time.monotonic() + 60
    while not (log.exists() and "step-is-running" in log.read_text()):
        assert time.monotonic() < deadline and proc.poll() is None, "the step never started"
        time.sleep(0.1)
    interrupted = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - interrupted < 15
    assert "Traceback" not in stderr
    assert "[slow] step-is-running" in stdout.splitlines(), stdout
    assert "pipeline canceled" in stdout
    summary = json.loads((repo / ".runner" / "runs" / "1" / "summary.json").read_text())
    assert summary["status"] == "canceled"
    assert {job["name"]: job["status"] for job in summary["jobs"]} == {
        "slow": "canceled",
        "after": "canceled",
    }
    assert (repo / ".runner" / "runs" / "1" / "report.html").is_file()
    assert not list((tmp_path / "home" / "tmp").glob("exec-*"))
    leftover = subprocess.run(["pgrep", "-f", "sleep 59.173"], capture_output=True, text=True).stdout.split()
    assert not [pid for pid in leftover if os.path.exists(f"/proc/{pid}")], "the step's process survived"


def test_example_repository(tmp_path: Path) -> None:
    """The README's first command: `runner exec examples/hello`, a subdirectory of this repository."""
    out = tmp_path / "out"
    result = runner_exec(EXAMPLE, "--out", str(out), home=tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [job["name"] for job in summary["jobs"]] == [
        "lint",
        "test (greeting: Hello)",
        "test (greeting: Hi)",
        "package",
    ]
    assert summary["tests"] == {"total": 8, "passed": 6, "failed": 0, "error": 0, "skipped": 2, "flaky": 0}
    assert len(list((out / "artifacts" / "package" / "dist").glob("hello-*.zip"))) == 1
    assert not (EXAMPLE / ".runner").exists()


def test_a_killed_exec_leaves_nothing_the_next_run_does_not_sweep(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "jobs:\n  slow: {steps: [{run: 'echo step-is-running; sleep 59.271'}]}\n")
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "exec"],
        cwd=repo,
        env=runner_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = repo / ".runner" / "runs" / "1" / "logs" / "slow.log"
    deadline = time.monotonic() + 60
    while not (log.exists() and "step-is-running" in log.read_text()):
        assert time.monotonic() < deadline and proc.poll() is None, "the step never started"
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    assert list((home / "tmp").iterdir())  # the snapshot, the job's workspace copy, its upper dirs
    (repo / "ci.yml").write_text("jobs:\n  quick: {steps: ['echo quick']}\n")  # uncommitted, and used
    result = runner_exec(repo, home=home)  # and sweeps what the killed one left
    assert result.returncode in (0, 1), result.stderr
    assert not list((home / "tmp").iterdir())
    assert not list((home / "run").iterdir())


def test_a_reused_out_directory_holds_only_the_new_run(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "jobs:\n  a: {steps: [echo a]}\n  b: {steps: [echo b]}\n")
    out = tmp_path / "out"
    assert runner_exec(repo, "--out", str(out), home=tmp_path / "home").returncode == 0
    assert (out / "logs" / "b.log").exists()
    (out / "notes.txt").write_text("mine")  # not the runner's: left alone
    assert runner_exec(repo, "--job", "a", "--out", str(out), home=tmp_path / "home").returncode == 0
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["a.log"]
    assert (out / "notes.txt").read_text() == "mine"
