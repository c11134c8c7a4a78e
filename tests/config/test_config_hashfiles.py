"""hash_files(): content hashes for cache keys, confined to the workspace."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from runner.config.expressions import ExpressionError
from runner.config.hashfiles import glob_regex, hash_files, matching_files


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "requirements.txt").write_text("pytest\n")
    (root / "requirements-dev.txt").write_text("ruff\n")
    (root / "pkg" / "a.py").write_text("a = 1\n")
    (root / "pkg" / "sub" / "b.py").write_text("b = 2\n")
    (root / ".git").mkdir()
    (root / ".git" / "c.py").write_text("never hashed\n")
    return root


def expected_digest(root: Path, names: list[str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(names):
        digest.update(name.encode() + b"\0" + hashlib.sha256((root / name).read_bytes()).digest())
    return digest.hexdigest()


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("*.txt", ["a.txt"], ["d/a.txt", ".txt/x"]),
        ("**/*.py", ["a.py", "d/a.py", "d/e/a.py"], ["a.pyc"]),
        ("pkg/**", ["pkg/a", "pkg/x/y"], ["pkg", "other/a"]),
        ("req?.txt", ["req1.txt"], ["req12.txt", "req/.txt"]),
        ("[ab].py", ["a.py", "b.py"], ["c.py"]),
        ("[!ab].py", ["c.py"], ["a.py"]),
    ],
)
def test_glob_semantics(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = glob_regex(pattern)
    assert all(regex.fullmatch(m) for m in matches)
    assert not any(regex.fullmatch(m) for m in misses)


def test_matches_sorted_relative_paths_and_skips_git(workspace: Path) -> None:
    assert matching_files(workspace, ("**/*.py",)) == ["pkg/a.py", "pkg/sub/b.py"]
    assert matching_files(workspace, ("requirements*.txt", "./pkg/a.py")) == [
        "pkg/a.py",
        "requirements-dev.txt",
        "requirements.txt",
    ]


def test_digest_over_paths_and_contents(workspace: Path) -> None:
    value = hash_files(workspace, ("requirements*.txt",))
    assert value == expected_digest(workspace, ["requirements-dev.txt", "requirements.txt"])
    assert (
        hash_files(workspace, ("requirements-dev.txt", "requirements.txt")) == value
    )  # order of globs is irrelevant
    (workspace / "requirements.txt").write_text("pytest==8\n")
    assert hash_files(workspace, ("requirements*.txt",)) != value


def test_renaming_changes_the_digest(workspace: Path) -> None:
    before = hash_files(workspace, ("pkg/**",))
    (workspace / "pkg" / "a.py").rename(workspace / "pkg" / "c.py")
    assert hash_files(workspace, ("pkg/**",)) != before


def test_no_match_or_no_workspace_is_empty(workspace: Path) -> None:
    assert hash_files(workspace, ("*.lock",)) == ""
    assert hash_files(None, ("*.txt",)) == ""


def test_symlinks_never_leave_the_workspace(workspace: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    os.symlink(secret, workspace / "leak.txt")
    os.symlink(tmp_path, workspace / "outside", target_is_directory=True)
    os.symlink(workspace / "requirements.txt", workspace / "inside.txt")
    leak = hash_files(workspace, ("leak.txt",))
    link_only = hashlib.sha256(b"leak.txt\0" + b"link:" + str(secret).encode()).hexdigest()
    assert leak == link_only  # the link text, not the secret's content
    secret.write_text("changed\n")
    assert hash_files(workspace, ("leak.txt",)) == leak
    assert matching_files(workspace, ("outside/**",)) == []  # a symlinked directory is not walked
    inside = hash_files(workspace, ("inside.txt",))
    content = hashlib.sha256(b"pytest\n").digest()
    assert inside == hashlib.sha256(b"inside.txt\0" + content).hexdigest()


@pytest.mark.parametrize("pattern", ["/etc/passwd", "../x", "a/../../b", "", "  "])
def test_patterns_stay_in_the_workspace(workspace: Path, pattern: str) -> None:
    with pytest.raises(ExpressionError):
        hash_files(workspace, (pattern,))


def test_needs_a_pattern(workspace: Path) -> None:
    with pytest.raises(ExpressionError, match="at least one pattern"):
        hash_files(workspace, ())


def test_only_directories_a_pattern_can_reach_are_walked(workspace: Path) -> None:
    deep = workspace / "node_modules" / "x"
    deep.mkdir(parents=True)
    (deep / "requirements.txt").write_text("not top level\n")
    assert matching_files(workspace, ("requirements*.txt",)) == ["requirements-dev.txt", "requirements.txt"]
    assert matching_files(workspace, ("*/x/*.txt",)) == ["node_modules/x/requirements.txt"]
    assert matching_files(workspace, ("pkg/*/b.py", "node_modules/**")) == [
        "node_modules/x/requirements.txt",
        "pkg/sub/b.py",
    ]


def test_walking_budget(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import runner.config.hashfiles as module

    monkeypatch.setattr(module, "MAX_FILES", 3)
    with pytest.raises(ExpressionError, match="looked at over 3 files"):
        hash_files(workspace, ("**/*",))
    # Without pruning, pkg/ and pkg/sub/ would be walked too and exceed the budget.
    assert hash_files(workspace, ("requirements.txt",))
