"""Workspace snapshots of real git repositories (and plain directories)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from runner.pipeline.workspace import WorkspaceError, snapshot


def git(repo: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_ALLOW_PROTOCOL="file",
    )
    result = subprocess.run(
        ["git", "-C", str(repo), "-c", "protocol.file.allow=always", *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return result.stdout


def files(root: Path) -> dict[str, str]:
    """Every entry under root: file contents, `-> target` for symlinks, `/` for empty directories."""
    out: dict[str, str] = {}
    for current, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(current) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                out[rel] = path.read_text()
            elif not any(path.iterdir()):
                out[rel] = "/"
    return out


def tree_state(root: Path) -> dict[str, tuple[int, int, float]]:
    """Everything about the tree a snapshot must not change, .git included."""
    state = {}
    for current, dirs, names in os.walk(root):
        for name in dirs + names:
            info = (Path(current) / name).lstat()
            state[os.path.join(current, name)] = (info.st_mode, info.st_size, info.st_mtime)
    return state


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitignore").write_text("*.log\nbuild/\n")
    (repo / "unchanged.txt").write_text("same\n")
    (repo / "modified.txt").write_text("old\n")
    (repo / "staged.txt").write_text("old\n")
    (repo / "deleted.txt").write_text("gone soon\n")
    (repo / "script.sh").write_text("#!/bin/sh\necho hi\n")
    (repo / "script.sh").chmod(0o755)
    (repo / "dir").mkdir()
    (repo / "dir" / "nested.txt").write_text("nested\n")
    os.symlink("dir/nested.txt", repo / "link")
    os.symlink("/etc/passwd", repo / "abs-link")
    os.symlink("dir", repo / "dir-link")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    (repo / "modified.txt").write_text("new, not staged\n")
    (repo / "staged.txt").write_text("new, staged\n")
    git(repo, "add", "staged.txt")
    (repo / "deleted.txt").unlink()
    (repo / "untracked.txt").write_text("untracked\n")
    (repo / "debug.log").write_text("ignored\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_text("ignored\n")
    (repo / ".runner" / "runs" / "1").mkdir(parents=True)
    (repo / ".runner" / "runs" / "1" / "summary.json").write_text("{}")
    return repo


def test_snapshot_is_the_tree_as_git_sees_it(repo: Path, tmp_path: Path) -> None:
    before = tree_state(repo)
    dest = snapshot(repo, tmp_path / "ws")
    assert files(dest) == {
        ".gitignore": "*.log\nbuild/\n",
        "unchanged.txt": "same\n",
        "modified.txt": "new, not staged\n",
        "staged.txt": "new, staged\n",
        "script.sh": "#!/bin/sh\necho hi\n",
        "dir/nested.txt": "nested\n",
        "link": "-> dir/nested.txt",
        "abs-link": "-> /etc/passwd",
        "dir-link": "-> dir",
        "untracked.txt": "untracked\n",
    }
    assert not (dest / ".git").exists()
    assert not (dest / ".runner").exists()
    assert os.stat(dest / "script.sh").st_mode & 0o777 == 0o755
    assert os.stat(dest / "unchanged.txt").st_mode & 0o777 == 0o644
    assert (dest / "link").is_symlink() and (dest / "dir-link").is_symlink()
    assert tree_state(repo) == before, "the snapshot changed the user's tree"


def test_snapshot_of_a_subdirectory_takes_only_its_files(repo: Path, tmp_path: Path) -> None:
    sub = repo / "dir"
    (sub / "new.txt").write_text("untracked in sub\n")
    (sub / "ignored.log").write_text("x")
    (sub / ".runner").mkdir()
    (sub / ".runner" / "x").write_text("x")
    dest = snapshot(sub, tmp_path / "ws")
    assert files(dest) == {"nested.txt": "nested\n", "new.txt": "untracked in sub\n"}


def test_repo_without_commits(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.txt").write_text("a")
    assert files(snapshot(repo, tmp_path / "ws")) == {"a.txt": "a"}


def test_checked_out_submodule_is_included(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    git(lib, "init", "-q")
    (lib / "lib.py").write_text("x = 1\n")
    git(lib, "add", "-A")
    git(lib, "commit", "-q", "-m", "lib")
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "app.py").write_text("import lib\n")
    git(repo, "submodule", "add", "-q", str(lib), "vendor/lib")
    git(repo, "commit", "-q", "-m", "app")
    (repo / "vendor" / "lib" / "local.py").write_text("untracked in the submodule\n")
    got = files(snapshot(repo, tmp_path / "ws"))
    assert got["vendor/lib/lib.py"] == "x = 1\n"
    assert got["vendor/lib/local.py"] == "untracked in the submodule\n"
    assert "vendor/lib/.git" not in got
    assert ".gitmodules" in got


def test_plain_directory_is_copied_whole_except_git_and_runner(tmp_path: Path) -> None:
    src = tmp_path / "plain"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "f.txt").write_text("f")
    (src / "a" / ".runner").mkdir()
    (src / "a" / ".runner" / "kept").write_text("only the top .runner is ours")
    (src / ".runner" / "runs").mkdir(parents=True)
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("not a real repo")
    (src / "empty").mkdir()
    os.symlink("a", src / "a-link")
    got = files(snapshot(src, tmp_path / "ws"))
    assert got == {
        "a/b/f.txt": "f",
        "a/.runner/kept": "only the top .runner is ours",
        "empty": "/",
        "a-link": "-> a",
    }


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="is not a directory"):
        snapshot(tmp_path / "nope", tmp_path / "ws")


def test_odd_file_names(tmp_path: Path) -> None:
    repo = tmp_path / "odd"
    repo.mkdir()
    git(repo, "init", "-q")
    names = ["sp ace.txt", "new\nline.txt", "ünï.txt", "-dash", "quote\"'.txt"]
    for name in names:
        (repo / name).write_text(name)
    raw = os.fsencode(repo) + b"/latin1-\xe9.txt"  # not UTF-8: git and the copy must keep the bytes
    with open(raw, "w") as handle:
        handle.write("bytes")
    git(repo, "add", "-A")
    dest = snapshot(repo, tmp_path / "ws")
    for name in names:
        assert (dest / name).read_text() == name
    with open(os.fsencode(dest) + b"/latin1-\xe9.txt") as handle:
        assert handle.read() == "bytes"
