"""`runner validate` and `runner schema` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"


def runner(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_valid_file_exits_0() -> None:
    path = DATA / "valid" / "contract.yml"
    result = runner("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{path}: valid (3 jobs)\n"
    assert result.stderr == ""


def test_invalid_file_exits_2_with_positions() -> None:
    path = DATA / "broken" / "many-errors.yml"
    result = runner("validate", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"{path}:7:5: unknown key 'stpes' in job 'lint' (did you mean 'steps'?)"
    assert lines[-1] == f"{path}: 4 errors"
    assert "Traceback" not in result.stderr


def test_compile_errors_count_as_invalid(tmp_path: Path) -> None:
    (tmp_path / "ci.yml").write_text("jobs:\n  t:\n    steps: ['echo ${{ env.NOPE }}']\n")
    result = runner("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "ci.yml:3:19: in expression ${{ env.NOPE }}: 'env' has no 'NOPE' (known: none)"
    )


def test_missing_file_exits_2() -> None:
    result = runner("validate", "/nonexistent/ci.yml")
    assert result.returncode == 2
    assert result.stderr == "runner: /nonexistent/ci.yml: no such file (give the path of a ci.yml)\n"


def test_default_file_is_ci_yml_in_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "ci.yml").write_text("jobs:\n  a: {steps: [x]}\n  b: {matrix: {n: [1, 2]}, steps: [x]}\n")
    result = runner("validate", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "ci.yml: valid (3 jobs)\n")


def test_schema_prints_json() -> None:
    result = runner("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "runner ci.yml"
    assert "Job" in schema["$defs"]


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, runner.config, runner.cli; "
        "print(sorted(m for m in ('pydantic', 'jinja2', 'ruamel.yaml') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr
