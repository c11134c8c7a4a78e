"""Every broken ci.yml in data/broken names its problems with exact line:column and text.

Each fixture lists what it expects in `# expect: LINE:COL: message` comments at its top.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.config import ConfigError, load

BROKEN = sorted((Path(__file__).parent / "data" / "broken").glob("*.yml"))
PREFIX = "# expect: "


def expectations(path: Path) -> list[str]:
    return [line[len(PREFIX) :] for line in path.read_text().splitlines() if line.startswith(PREFIX)]


def test_there_are_enough_broken_examples() -> None:
    assert len(BROKEN) >= 25
    assert all(expectations(path) for path in BROKEN), "every fixture states what it expects"


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_file_reports_exact_positions(path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(path)
    error = caught.value
    assert sorted(f"{d.line}:{d.column}: {d.message}" for d in error.diagnostics) == sorted(
        expectations(path)
    )
    assert {d.file for d in error.diagnostics} == {str(path)}
    assert str(error).splitlines() == [str(d) for d in error.diagnostics]
    assert all(line.startswith(f"{path}:") for line in str(error).splitlines())


def test_the_name_given_is_the_name_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        load(Path("pipelines/ci.yml"), text="jobs:\n  t:\n    stpes: [x]\n")
    assert str(caught.value).splitlines()[0] == (
        "pipelines/ci.yml:3:5: unknown key 'stpes' in job 't' (did you mean 'steps'?)"
    )


def test_missing_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load(Path("/nonexistent/ci.yml"))
    assert str(caught.value) == "/nonexistent/ci.yml:1:1: file not found"


def test_invalid_utf8_is_positioned(tmp_path: Path) -> None:
    path = tmp_path / "ci.yml"
    path.write_bytes(b"jobs:\n  t:\n    steps: [\xff]\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value) == f"{path}:3:13: file is not valid UTF-8 text"


def test_huge_file_is_refused() -> None:
    text = "jobs: {t: {steps: [x]}}\n" + "# padding\n" * 120_000
    with pytest.raises(
        ConfigError, match=r"ci.yml:1:1: file is too large \(\d+ bytes; the limit is 262144\)"
    ):
        load(Path("ci.yml"), text=text)


def test_deep_nesting_is_refused() -> None:
    text = "jobs: {t: {steps: [x]}}\nx: " + "[" * 2000 + "]" * 2000 + "\n"
    with pytest.raises(ConfigError, match=r"nested too deeply"):
        load(Path("ci.yml"), text=text)


def test_errors_are_sorted_and_all_collected() -> None:
    text = "jobs:\n  b:\n    steps: []\n  a:\n    network: x\n    steps: [y]\n    retry: many\n"
    with pytest.raises(ConfigError) as caught:
        load(Path("ci.yml"), text=text)
    lines = [(d.line, d.column) for d in caught.value.diagnostics]
    assert lines == sorted(lines)
    assert len(lines) == 3
