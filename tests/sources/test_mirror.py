"""Git mirrors against real repositories served over file:// and `git daemon` on 127.0.0.1."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runner.settings import Paths
from runner.sources.mirror import Mirrors, SourceError

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def commit_file(repo: Path, name: str, content: bytes, message: str) -> str:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    git(repo, "add", "--", name)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A repository with an executable, a symlink, a nested dir, odd names, binary and empty files."""
    repo = tmp_path / "srv" / "proj"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "ci.yml").write_text("jobs:\n  test:\n    steps:\n      - run: ./build.sh\n")
    (repo / "build.sh").write_text("#!/bin/sh\necho built\n")
    (repo / "build.sh").chmod(0o755)
    (repo / "docs").mkdir()
    (repo / "docs" / "a file (1).txt").write_text("spaces and parentheses\n")
    (repo / "docs" / "empty").write_bytes(b"")
    (repo / "blob.bin").write_bytes(bytes(range(256)) * 4)
    os.symlink("docs/a file (1).txt", repo / "link")
    os.symlink("../outside", repo / "dangling")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    git(repo, "tag", "-a", "v1", "-m", "release one")
    git(repo, "branch", "old-feature")
    return repo


@pytest.fixture
def mirrors(tmp_path: Path) -> Mirrors:
    return Mirrors(Paths(tmp_path / "home"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def daemon_url(origin: Path) -> Iterator[str]:
    """`git://127.0.0.1:PORT/proj`, served by a real git daemon stopped when the test ends."""
    base = origin.parent
    port = free_port()
    process = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", f"--base-path={base}", "--export-all", f"--port={port}",
         "--listen=127.0.0.1", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("git daemon did not start")
                time.sleep(0.05)
        yield f"git://127.0.0.1:{port}/proj"
    finally:
        process.terminate()
        process.wait(timeout=10)


def object_counts(mirror: Path) -> tuple[int, int]:
    """(loose objects, packed objects) of the mirror."""
    info = dict(line.split(": ", 1) for line in git(mirror, "count-objects", "-v").splitlines())
    return int(info["count"]), int(info["in-pack"])


def packs(mirror: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in (mirror / "objects" / "pack").glob("*.pack")}


def fetch_transfers_only_new_objects(mirrors: Mirrors, origin: Path, url: str) -> None:
    mirror = mirrors.fetch(url)
    assert mirror.parent == mirrors.root and mirror.name == f"{mirrors.key(url)}.git"
    assert git(mirror, "rev-parse", "main") == git(origin, "rev-parse", "main")
    loose_before, packed_before = object_counts(mirror)
    packs_before = packs(mirror)
    (mirror / "marker").write_text("this mirror was not cloned again")
    old = git(origin, "rev-parse", "main")
    new = commit_file(origin, "src/new.py", b"print('new')\n", "second")
    expected_new = len(git(origin, "rev-list", "--objects", f"{old}..{new}").splitlines())
    assert expected_new == 4  # commit, root tree, src tree, blob
    git(origin, "branch", "-D", "old-feature")
    assert mirrors.fetch(url) == mirror
    loose_after, packed_after = object_counts(mirror)
    # exactly the new objects arrived (a small fetch is unpacked loose), the old packs are untouched
    assert (loose_after - loose_before, packed_after - packed_before) == (expected_new, 0)
    assert packs(mirror) == packs_before
    assert (mirror / "marker").exists()
    assert git(mirror, "rev-parse", "main") == new
    assert "old-feature" not in git(mirror, "branch", "--list")  # pruned


def test_file_url_fetch_moves_only_new_objects(mirrors: Mirrors, origin: Path) -> None:
    fetch_transfers_only_new_objects(mirrors, origin, f"file://{origin}")


def test_git_daemon_fetch_moves_only_new_objects(mirrors: Mirrors, origin: Path, daemon_url: str) -> None:
    fetch_transfers_only_new_objects(mirrors, origin, daemon_url)
    assert mirrors.resolve(daemon_url, "main") == git(origin, "rev-parse", "main")


@pytest.fixture
def http_url(origin: Path, tmp_path: Path) -> Iterator[str]:
    """A bare copy of `origin` served over plain (dumb) HTTP by a real http.server on 127.0.0.1."""
    served = tmp_path / "www"
    served.mkdir()
    git(served, "clone", "-q", "--bare", str(origin), "proj.git")
    git(served / "proj.git", "update-server-info")
    handler = functools.partial(QuietHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/proj.git"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_http_url(mirrors: Mirrors, origin: Path, http_url: str, tmp_path: Path) -> None:
    sha = git(origin, "rev-parse", "main")
    assert mirrors.resolve(http_url, "main") == sha
    assert mirrors.read_file(http_url, sha, "ci.yml") == (origin / "ci.yml").read_bytes()
    assert workspace_of(mirrors.checkout(http_url, sha, tmp_path / "ws")) == tree_of(origin, sha)


def test_ssh_urls_through_the_ssh_transport(
    mirrors: Mirrors, origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git's real ssh transport, with a local stand-in for `ssh` (no sshd here): it runs the remote
    command git asks for (git-upload-pack '<path>') and records the host it was asked to reach."""
    calls = tmp_path / "ssh-calls"
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nfor last; do :; done\nexec sh -c "$last"\n')
    fake_ssh.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(fake_ssh))
    sha = git(origin, "rev-parse", "main")
    for url in (f"ssh://git@127.0.0.1{origin}", f"git@127.0.0.1:{origin}"):
        assert mirrors.resolve(url, "main") == sha
        assert mirrors.read_file(url, sha, "ci.yml") == (origin / "ci.yml").read_bytes()
    recorded = calls.read_text()
    assert "git@127.0.0.1" in recorded and "git-upload-pack" in recorded


def test_force_push_moves_the_branch(mirrors: Mirrors, origin: Path) -> None:
    url = f"file://{origin}"
    commit_file(origin, "a.txt", b"a", "to be rewritten")
    pushed = mirrors.resolve(url, "main")
    git(origin, "commit", "-q", "--amend", "-m", "rewritten")
    rewritten = git(origin, "rev-parse", "main")
    assert rewritten != pushed
    assert mirrors.resolve(url, "main") == rewritten
    assert mirrors.read_file(url, pushed, "a.txt") == b"a"  # the old commit stays readable


def test_ext_transport_is_refused(mirrors: Mirrors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # even where the machine's git configuration would allow `ext::`
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.ext.allow")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "always")
    marker = tmp_path / "pwned"
    with pytest.raises(SourceError):
        mirrors.fetch(f"ext::sh -c touch% {marker}")
    assert not marker.exists()


def test_resolve_branches_tags_and_shas(mirrors: Mirrors, origin: Path) -> None:
    url = f"file://{origin}"
    first = git(origin, "rev-parse", "main")
    assert mirrors.resolve(url, "main") == first
    assert mirrors.resolve(url, "refs/heads/main") == first
    assert mirrors.resolve(url, "v1") == first  # the annotated tag peels to its commit
    assert mirrors.resolve(url, "refs/tags/v1") == first
    assert mirrors.resolve(url, first) == first
    second = commit_file(origin, "x", b"x", "x")
    assert mirrors.resolve(url, "main") == second  # resolve fetches first
    with pytest.raises(SourceError, match="names no branch"):
        mirrors.resolve(url, "no-such-branch")
    with pytest.raises(SourceError):
        mirrors.resolve(url, "--upload-pack=touch /tmp/pwned")


def test_read_file_without_checkout_fetches_unknown_shas(mirrors: Mirrors, origin: Path) -> None:
    url = f"file://{origin}"
    first = git(origin, "rev-parse", "main")
    assert mirrors.read_file(url, first, "ci.yml") == (origin / "ci.yml").read_bytes()
    assert mirrors.read_file(url, first, "/blob.bin") == bytes(range(256)) * 4
    assert mirrors.read_file(url, first, "docs/a file (1).txt") == b"spaces and parentheses\n"
    assert mirrors.read_file(url, first, "link") == b"docs/a file (1).txt"
    assert mirrors.read_file(url, first, "missing.yml") is None
    assert mirrors.read_file(url, first, "docs") is None
    assert mirrors.read_file(url, first, "../etc/passwd") is None
    second = commit_file(origin, "ci.yml", b"jobs: {}\n", "change ci")
    assert mirrors.read_file(url, second, "ci.yml") == b"jobs: {}\n"  # not fetched yet: fetched now
    assert mirrors.read_file(url, first, "ci.yml") != b"jobs: {}\n"
    with pytest.raises(SourceError, match="is not in"):
        mirrors.read_file(url, "f" * 40, "ci.yml")


def tree_of(repo: Path, sha: str) -> dict[str, tuple[str, bytes]]:
    """`path -> (git mode, content)` of a commit, straight from git."""
    entries = {}
    for line in git(repo, "ls-tree", "-r", "-z", sha).split("\0"):
        if not line:
            continue
        meta, name = line.split("\t", 1)
        mode, _, obj = meta.split(" ")
        blob = subprocess.run(["git", "cat-file", "blob", obj], cwd=repo, capture_output=True, check=True)
        entries[name] = (mode, blob.stdout)
    return entries


def workspace_of(dest: Path) -> dict[str, tuple[str, bytes]]:
    """The same view of a checked-out directory."""
    entries = {}
    for path in sorted(dest.rglob("*")):
        info = path.lstat()
        rel = str(path.relative_to(dest))
        if stat.S_ISDIR(info.st_mode):
            assert stat.S_IMODE(info.st_mode) == 0o755, rel
            continue
        if stat.S_ISLNK(info.st_mode):
            entries[rel] = ("120000", os.readlink(path).encode())
        else:
            mode = stat.S_IMODE(info.st_mode)
            assert mode in (0o644, 0o755), (rel, oct(mode))
            entries[rel] = ("100755" if mode == 0o755 else "100644", path.read_bytes())
    return entries


def test_checkout_holds_exactly_the_commit(mirrors: Mirrors, origin: Path, tmp_path: Path) -> None:
    url = f"file://{origin}"
    first = git(origin, "rev-parse", "main")
    commit_file(origin, "later.txt", b"not in the first commit", "later")
    old_umask = os.umask(0o077)  # a strict worker umask must not change the modes
    try:
        dest = mirrors.checkout(url, first, tmp_path / "ws")
    finally:
        os.umask(old_umask)
    assert not (dest / ".git").exists()
    assert workspace_of(dest) == tree_of(origin, first)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    mirror = mirrors.path(url)
    assert not (mirror / "index").exists()  # the mirror's own state is untouched
    ws2 = mirrors.checkout(url, "v1", tmp_path / "ws2")  # a tag name works as well as a sha
    assert workspace_of(ws2) == tree_of(origin, first)


def test_checkout_refuses_a_non_empty_destination(mirrors: Mirrors, origin: Path, tmp_path: Path) -> None:
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "keep").write_text("mine")
    with pytest.raises(SourceError, match="not empty"):
        mirrors.checkout(f"file://{origin}", git(origin, "rev-parse", "main"), dest)
    assert (dest / "keep").read_text() == "mine"


def test_unreachable_urls_are_source_errors_without_credentials(mirrors: Mirrors, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="clone"):
        mirrors.fetch(f"file://{tmp_path}/nowhere")
    with pytest.raises(SourceError):
        mirrors.fetch(f"git://127.0.0.1:{free_port()}/nothing")
    with pytest.raises(SourceError) as caught:
        mirrors.fetch(f"http://user:hunter2@127.0.0.1:{free_port()}/repo.git")
    assert "hunter2" not in str(caught.value)
    leftovers = [p.name for p in mirrors.root.iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []  # a failed clone leaves no half mirror behind


def test_fetch_waits_for_the_lock(mirrors: Mirrors, origin: Path) -> None:
    url = f"file://{origin}"
    done = threading.Event()
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            mirrors.fetch(url)
        except BaseException as error:
            errors.append(error)
        done.set()

    with mirrors.locked(url):
        thread = threading.Thread(target=fetch)
        thread.start()
        assert not done.wait(0.5)  # another writer holds the mirror
        assert not mirrors.path(url).exists()
    assert done.wait(30)
    thread.join()
    assert errors == []
    assert mirrors.path(url).is_dir()


def test_threads_fetch_one_mirror_at_once(mirrors: Mirrors, origin: Path) -> None:
    url = f"file://{origin}"
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(mirrors.fetch(url))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(results) == 4 and len(set(results)) == 1
    assert sorted(p.name for p in mirrors.root.iterdir()) == sorted(
        [results[0].name, f"{mirrors.key(url)}.lock"]
    )


def test_processes_fetch_one_mirror_at_once(mirrors: Mirrors, origin: Path, tmp_path: Path) -> None:
    url = f"file://{origin}"
    script = (
        "import sys; from pathlib import Path; from runner.settings import Paths; "
        "from runner.sources.mirror import Mirrors; "
        "print(Mirrors(Paths(Path(sys.argv[1]))).fetch(sys.argv[2]))"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "home"), url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], outputs
    assert {out.strip() for out, _ in outputs} == {str(mirrors.path(url))}
    assert git(mirrors.path(url), "rev-parse", "main") == git(origin, "rev-parse", "main")
    git(mirrors.path(url), "fsck", "--no-progress")


def test_a_broken_mirror_is_cloned_again(mirrors: Mirrors, origin: Path) -> None:
    url = f"file://{origin}"
    mirror = mirrors.path(url)
    mirror.mkdir(parents=True)
    (mirror / "junk").write_text("crashed mid-clone long ago")
    assert mirrors.fetch(url) == mirror
    assert not (mirror / "junk").exists()
    shutil.rmtree(mirror)
    assert mirrors.read_file(url, git(origin, "rev-parse", "main"), "ci.yml") is not None
