"""Git mirrors: a bare mirror per repository under RUNNER_HOME, fetched incrementally, read without checkout.

A worker never clones a repository twice: the first build makes `git clone --mirror`, every later one
runs `git fetch --prune`, so only new objects travel. Workers on one machine share the mirrors; an
exclusive `fcntl.flock` on `<mirror>.lock` serialises the writers (clone, fetch). Readers (`read_file`,
`checkout`, `resolve` after its fetch) need no lock: git adds objects before it moves refs.

A checkout holds exactly the commit's tree (file contents, the executable bit, symlinks) and **no
`.git` directory**: the workspace is mounted into containers where the mirror is not visible, so a
`.git` pointing at it would be broken. The git facts a job may need come from the build (`git.*`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import git

from runner.settings import Paths

ALLOWED_PROTOCOLS = "file:git:http:https:ssh"
GIT_TIMEOUT = 900.0  # seconds for one clone or fetch before it is killed
_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?")
_ADVICE = ("Please make sure you have the correct access rights", "and the repository exists.")
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


class SourceError(RuntimeError):
    """A repository that cannot be fetched, or a sha or ref it does not hold; the message says which."""


def redact(url: str) -> str:
    """A URL fit for messages and logs: `https://token@host/x` -> `https://***@host/x`."""
    return _CREDENTIALS.sub("***@", url)


def _environment() -> dict[str, str]:
    """No password or host-key questions (a worker has nobody to answer them); known transports only."""
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,  # never `ext::` commands from a webhook's URL
    }
    if "GIT_SSH_COMMAND" not in os.environ:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    return env


def _git_message(error: git.GitCommandError) -> str:
    """git's own words on one line, without its boilerplate advice."""
    stderr = str(error.stderr or "").strip().removeprefix("stderr:").strip().strip("'")
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    chosen = [line for line in lines if not line.startswith(_ADVICE)]
    text = " ".join(line.removeprefix("fatal: ").removeprefix("error: ") for line in chosen)
    return text[:500] or f"exit status {error.status}"


class Mirrors:
    """The mirror cache of one machine: `fetch`, `resolve`, `read_file` and `checkout` by repository URL."""

    def __init__(self, paths: Paths, *, timeout: float = GIT_TIMEOUT) -> None:
        self.root = paths.mirrors
        self.timeout = timeout

    # where things are

    def key(self, repo_url: str) -> str:
        """A short, stable name for a repository URL (the hash keeps odd URLs off the filesystem)."""
        return hashlib.sha256(repo_url.strip().encode()).hexdigest()[:20]

    def path(self, repo_url: str) -> Path:
        """The bare mirror of `repo_url` (it may not exist yet)."""
        return self.root / f"{self.key(repo_url)}.git"

    def lock_path(self, repo_url: str) -> Path:
        return self.root / f"{self.key(repo_url)}.lock"

    @contextlib.contextmanager
    def locked(self, repo_url: str) -> Iterator[None]:
        """Hold the writer lock of one mirror (across threads and processes of this machine)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path(repo_url), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    # writers

    def fetch(self, repo_url: str) -> Path:
        """Bring the mirror of `repo_url` up to date (clone it the first time); return its path."""
        with self.locked(repo_url):
            mirror = self.path(repo_url)
            if (mirror / "HEAD").is_file() and (mirror / "objects").is_dir():
                self._git(mirror, "fetch", "--prune", "--quiet", "origin", what=f"fetch {redact(repo_url)}")
            else:
                self._clone(repo_url, mirror)
            return mirror

    def _clone(self, repo_url: str, mirror: Path) -> None:
        """Clone into a scratch directory then rename it, so a crash never leaves half a mirror."""
        scratch = Path(tempfile.mkdtemp(prefix=f".{mirror.stem}-", dir=self.root))
        try:
            target = scratch / "mirror.git"
            self._run(["git", "clone", "--mirror", "--quiet", "--", repo_url, str(target)], None,
                      f"clone {redact(repo_url)}")  # fmt: skip
            self._git(target, "config", "gc.autoDetach", "false", what="configure mirror")
            if mirror.exists():  # a broken leftover of an older crash
                shutil.rmtree(mirror)
            target.rename(mirror)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _ensure_commit(self, repo_url: str, sha: str) -> Path:
        """The mirror, fetched if it lacks `sha` (a commit, or a tag object peeling to one)."""
        mirror = self.path(repo_url)
        if mirror.is_dir() and self._has_commit(mirror, sha):
            return mirror
        mirror = self.fetch(repo_url)
        if self._has_commit(mirror, sha):
            return mirror
        if _FULL_SHA.fullmatch(sha):  # not on any ref (force-pushed away?): servers may still give it
            with self.locked(repo_url), contextlib.suppress(SourceError):
                self._git(mirror, "fetch", "--quiet", "origin", sha, what="fetch one commit")
            if self._has_commit(mirror, sha):
                return mirror
        raise SourceError(f"commit {sha} is not in {redact(repo_url)} (pushed over, or never pushed)")

    # readers

    def resolve(self, repo_url: str, ref: str) -> str:
        """The commit sha a branch, tag, full ref or sha names now (after a fetch)."""
        mirror = self.fetch(repo_url)
        if not ref or ref.startswith("-"):
            raise SourceError(f"{ref!r} is not a branch, tag or commit")
        for candidate in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
            sha = self._rev_parse(mirror, f"{candidate}^{{commit}}")
            if sha:
                return sha
        raise SourceError(f"{ref!r} names no branch, tag or commit of {redact(repo_url)}")

    def read_file(self, repo_url: str, sha: str, path: str) -> bytes | None:
        """The bytes of `path` at commit `sha` (a symlink gives its target), or None when it is not a file."""
        clean = PurePosixPath(path.lstrip("/"))
        if not clean.parts or ".." in clean.parts:
            return None
        mirror = self._ensure_commit(repo_url, sha)
        try:
            with git.Repo(mirror) as repo:
                try:
                    item = repo.commit(f"{sha}^{{commit}}").tree / str(clean)
                except KeyError:
                    return None
                if item.type != "blob":
                    return None
                return bytes(item.data_stream.read())
        except (
            ValueError,
            git.GitError,
            git.BadName,
            git.BadObject,
        ) as error:  # BadName, a damaged mirror, a vanished cat-file
            raise SourceError(f"cannot read {path} at {sha} in {redact(repo_url)}: {error}") from None

    def checkout(self, repo_url: str, sha: str, dest: Path) -> Path:
        """Write the files of commit `sha` into `dest` (absent or empty); no `.git`. Returns `dest`."""
        mirror = self._ensure_commit(repo_url, sha)
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise SourceError(f"checkout destination {dest} is not empty")
        commit = self._rev_parse(mirror, f"{sha}^{{commit}}")
        if commit is None:
            raise SourceError(f"commit {sha} is not in {redact(repo_url)}")
        with tempfile.TemporaryDirectory(prefix="index-", dir=self.root) as scratch:
            # A private index: the mirror's own state (HEAD, refs, index) is never touched.
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index"), "GIT_WORK_TREE": str(dest)}
            self._run(
                ["git", "-c", "core.autocrlf=false", "-c", "core.symlinks=true", "--git-dir", str(mirror),
                 "read-tree", "--reset", "-u", commit],
                env, f"check out {sha}",
            )  # fmt: skip
        self._exact_modes(mirror, commit, dest)
        return dest

    def _exact_modes(self, mirror: Path, commit: str, dest: Path) -> None:
        """Modes as the commit says (0644 / 0755), whatever the worker's umask made of them."""
        argv = ["git", "--git-dir", str(mirror), "ls-tree", "-r", "-z", "-t", "--full-tree", commit]
        listing = self._run(argv, None, "list files")
        for entry in listing.split(b"\0"):
            if not entry:
                continue
            meta, _, name = entry.partition(b"\t")
            mode = meta.split(b" ", 1)[0]
            target = dest / os.fsdecode(name)
            if mode == b"040000":
                os.chmod(target, 0o755)
            elif mode in (b"100644", b"100755") and not stat.S_ISLNK(target.lstat().st_mode):
                os.chmod(target, 0o755 if mode == b"100755" else 0o644)
        os.chmod(dest, 0o755)

    # git plumbing

    def _has_commit(self, mirror: Path, sha: str) -> bool:
        return (
            bool(sha) and not sha.startswith("-") and self._rev_parse(mirror, f"{sha}^{{commit}}") is not None
        )

    def _rev_parse(self, mirror: Path, spec: str) -> str | None:
        try:
            out = self._run(
                ["git", "--git-dir", str(mirror), "rev-parse", "--verify", "--quiet", spec], None, ""
            )
        except SourceError:
            return None
        return out.decode().strip() or None

    def _git(self, mirror: Path, *args: str, what: str) -> None:
        self._run(["git", "--git-dir", str(mirror), *args], None, what)

    def _run(self, argv: list[str], env: dict[str, str] | None, what: str) -> bytes:
        """stdout of a git command; SourceError with git's own words when it fails."""
        try:
            out = git.Git().execute(
                argv,
                env={**_environment(), **(env or {})},
                kill_after_timeout=self.timeout,
                stdout_as_string=False,
                strip_newline_in_stdout=False,
            )
        except git.GitCommandError as error:
            raise SourceError(f"git could not {what}: {redact(_git_message(error))}") from None
        except git.GitCommandNotFound:
            raise SourceError("git is not installed: apt-get install -y git") from None
        return out if isinstance(out, bytes) else b""
