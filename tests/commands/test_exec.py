"""`runner exec` without containers: argument, secrets and ci.yml errors, run numbering, helpers."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from exec_helpers import make_repo, runner_exec

from runner.commands.exec import UsageError, display_path, find_ci_file, next_run_dir, parse_env

GOOD = """
    jobs:
      build:
        steps:
          - run: echo hi
      test:
        needs: [build]
        steps:
          - run: echo test
"""


def assert_one_line_error(stderr: str, pattern: str) -> None:
    assert "Traceback" not in stderr
    assert re.search(pattern, stderr), stderr


def test_broken_ci_yml_exits_2_with_file_line_column(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "jobs:\n  build:\n    steps:\n      - run: echo hi\n    nedds: [x]\n")
    result = runner_exec(tmp_path, "proj", home=tmp_path / "home")
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result.stderr, r"(?m)^proj/ci\.yml:5:5: .*nedds")
    assert result.stdout == ""
    assert not (repo / ".runner").exists(), "nothing is created for an invalid config"


def test_yaml_syntax_error_exits_2(tmp_path: Path) -> None:
    make_repo(tmp_path, "jobs:\n  build:\n    steps: [\n")
    result = runner_exec(tmp_path / "proj", home=tmp_path / "home")
    assert result.returncode == 2
    assert_one_line_error(result.stderr, r"(?m)^ci\.yml:\d+:\d+: ")


def test_expression_error_found_when_compiling_exits_2(tmp_path: Path) -> None:
    make_repo(tmp_path, "jobs:\n  build:\n    steps:\n      - run: echo ${{ matrix.nope }}\n")
    result = runner_exec(tmp_path / "proj", home=tmp_path / "home")
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result.stderr, r"(?m)^ci\.yml:4:\d+: ")
    assert not list((tmp_path / "home" / "tmp").iterdir()), "the workspace copy is removed"


def test_missing_ci_yml(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner_exec(tmp_path, "empty", home=tmp_path / "home")
    assert result.returncode == 2
    assert result.stderr == "runner: error: no ci.yml in empty (give the pipeline file with --file)\n"


def test_not_a_directory(tmp_path: Path) -> None:
    result = runner_exec(tmp_path, "nope", home=tmp_path / "home")
    assert (result.returncode, result.stderr) == (2, "runner: error: nope: not a directory\n")


def test_bad_env_and_secrets_file(tmp_path: Path) -> None:
    make_repo(tmp_path, GOOD)
    result = runner_exec(tmp_path / "proj", "--env", "1X=y", home=tmp_path / "home")
    assert result.returncode == 2
    assert_one_line_error(result.stderr, r"^runner: error: --env '1X=y': expected NAME=value")
    secrets = tmp_path / "secrets.env"
    secrets.write_text("GOOD=1\nthis is not a secret line\n")
    result = runner_exec(tmp_path / "proj", "--secrets-file", str(secrets), home=tmp_path / "home")
    assert result.returncode == 2
    assert result.stderr == f"runner: error: {secrets}:2: expected NAME=value\n"
    result = runner_exec(tmp_path / "proj", home=tmp_path / "home", RUNNER_SECRETS_FILE=str(secrets))
    assert result.returncode == 2 and f"{secrets}:2:" in result.stderr


def test_unknown_job_exits_2(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, GOOD)
    result = runner_exec(repo, "--job", "nope", home=tmp_path / "home")
    assert result.returncode == 2
    assert result.stderr == "runner: error: unknown job 'nope' (jobs: build, test)\n"
    assert not (repo / ".runner" / "runs").exists()


def test_next_run_dir_numbers_runs_and_ignores_itself(tmp_path: Path) -> None:
    assert next_run_dir(tmp_path) == tmp_path / ".runner" / "runs" / "1"
    assert next_run_dir(tmp_path) == tmp_path / ".runner" / "runs" / "2"
    (tmp_path / ".runner" / "runs" / "7").mkdir()
    (tmp_path / ".runner" / "runs" / "notes").mkdir()
    assert next_run_dir(tmp_path).name == "8"
    assert (tmp_path / ".runner" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_parse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HERE", "here")
    assert parse_env(["A=1", "B=x=y", "C=", "FROM_HERE"]) == {
        "A": "1",
        "B": "x=y",
        "C": "",
        "FROM_HERE": "here",
    }
    monkeypatch.delenv("UNSET_ONE", raising=False)
    with pytest.raises(UsageError, match="UNSET_ONE is not set here"):
        parse_env(["UNSET_ONE"])
    with pytest.raises(UsageError, match="expected NAME=value"):
        parse_env(["=x"])


def test_find_ci_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / "ci").mkdir(parents=True)
    (repo / "ci" / "other.yml").write_text("jobs: {}\n")
    monkeypatch.chdir(tmp_path)
    assert find_ci_file(repo, "ci/other.yml") == repo / "ci" / "other.yml"  # relative to DIR
    assert find_ci_file(repo, "repo/ci/other.yml") == Path("repo/ci/other.yml")  # relative to here
    with pytest.raises(UsageError, match=r"--file nope\.yml: no such file"):
        find_ci_file(repo, "nope.yml")


def test_display_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert display_path(tmp_path / "a" / "report.html") == os.path.join("a", "report.html")
    assert display_path(Path("/")) == "/"


def test_results_directory_that_cannot_be_made(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, GOOD)
    (tmp_path / "afile").write_text("x")
    result = runner_exec(repo, "--out", str(tmp_path / "afile" / "run"), home=tmp_path / "home")
    assert result.returncode == 1
    assert (
        result.stderr
        == f"runner: error: cannot create the results directory {tmp_path}/afile/run: Not a directory\n"
    )
