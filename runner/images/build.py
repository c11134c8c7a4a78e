"""Image builds with content-keyed layer caching: Dockerfiles and the ci.yml `image: {from, build}` form.

A step's cache key is a digest of its parent's key, the instruction, the build environment in effect
(ARG/ENV, workdir, user, shell) and, for COPY/ADD, the paths, modes and contents it copies (never
mtimes). A key already in the store costs nothing: no container, no copy. A RUN runs in a sandbox over
its parent's layers, and the container's upper directory becomes the layer by rename; a COPY writes
its layer directly. Every step is printed as CACHED or built, with its short key and, for a miss, why.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.images import context as ctx

if TYPE_CHECKING:
    from runner.sandbox.seccomp import Mode as SeccompMode
from runner.images import dockerfile as df
from runner.images.config import BASE_LABEL
from runner.images.errors import ImageError
from runner.images.fsutil import flocked, read_json, write_json
from runner.images.imageview import (
    ImageView,
    home_of,
    make_dirs,
    make_workdir,
    owner_ids,
    parse_mode,
    user_ids,
)
from runner.images.reference import is_host
from runner.images.store import Store
from runner.settings import Paths

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
Printer = Callable[[str], None]


@dataclass
class State:
    """An image being built: its base, layers (bottom first), config and the cache key chain so far."""

    base: str | None  # "host" or None (layers alone, over the bare skeleton)
    layers: list[str]
    config: dict[str, Any]
    key: str
    args: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for entry in self.config.get("Env") or []:
            k, _, v = entry.partition("=")
            out[k] = v
        return out

    def set_env(self, key: str, value: str) -> None:
        env = self.env()
        env[key] = value
        self.config["Env"] = [f"{k}={v}" for k, v in env.items()]


@dataclass
class BuiltImage:
    image_id: str
    base: str | None
    layer_dirs: list[Path]  # top first, as overlay lowerdir= wants them
    config: dict[str, Any]
    steps: int = 0
    cached: int = 0


def host_identity() -> str:
    """What the `host` image is made of on this machine: cached layers built on another host never match."""
    digest = hashlib.sha256(b"host\0")
    for path in (
        "/etc/os-release",
        "/var/lib/dpkg/status",
        "/var/lib/rpm/rpmdb.sqlite",
        "/lib/apk/db/installed",
    ):
        try:
            with open(path, "rb") as f:
                digest.update(path.encode() + b"\0" + f.read())
        except OSError:
            continue
    digest.update(os.uname().machine.encode())
    return digest.hexdigest()


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class Builder:
    def __init__(
        self,
        paths: Paths,
        *,
        store: Store | None = None,
        no_cache: bool = False,
        out: Printer = print,
        network: str | None = None,
        log: Callable[[str, bytes], None] | None = None,
        seccomp: SeccompMode = "default",
    ) -> None:
        self.paths = paths
        self.seccomp: SeccompMode = seccomp  # the syscall filter of RUN steps (the job's `security:`)
        self.store = store or Store(paths)
        self.no_cache = no_cache
        self.out = out
        self.network = network or os.environ.get("RUNNER_BUILD_NETWORK", "bridge")
        self.log = log or (lambda stream, line: out("  " + line.decode(errors="replace")))
        self.index_dir = paths.images / "buildcache"

    # ---- entry points ----------------------------------------------------------------------------------

    def build_dockerfile(
        self,
        file: Path,
        context: Path,
        *,
        tag: str | None = None,
        build_args: dict[str, str] | None = None,
        target: str | None = None,
    ) -> BuiltImage:
        """Build a Dockerfile. rm and prune wait until the image is recorded: while it builds, no image
        refers to its new layers yet."""
        with self.store.adding():
            return self._build_dockerfile(file, context, tag=tag, build_args=build_args, target=target)

    def build_steps(
        self, base: str, steps: list[df.Instruction], context: Path, *, tag: str | None = None
    ) -> BuiltImage:
        """The ci.yml form: `from:` and `build:` entries already turned into instructions."""
        with self.store.adding():
            return self._build_steps(base, steps, context, tag=tag)

    def _build_dockerfile(
        self,
        file: Path,
        context: Path,
        *,
        tag: str | None = None,
        build_args: dict[str, str] | None = None,
        target: str | None = None,
    ) -> BuiltImage:
        try:
            text = file.read_text()
        except OSError as exc:
            raise ImageError(f"cannot read {file}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ImageError(f"{file}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
        parsed = df.parse(text, file.name)
        build_args = build_args or {}
        global_vars: dict[str, str] = {}
        for arg in parsed.global_args:
            for k, v in df.key_values(arg, global_vars, parsed.file):
                global_vars[k] = build_args.get(k, "" if v == "\0unset" else v)
        stages: dict[str, State] = {}
        last = parsed.stages[-1] if target is None else parsed.stage(target)
        if last is None:
            raise ImageError(f"{parsed.file}: no stage named {target!r}")
        state: State | None = None
        total = sum(len(s.instructions) + 1 for s in parsed.stages[: last.index + 1])
        counter = [0]
        for stage in parsed.stages[: last.index + 1]:
            base_name = df.substitute(stage.base, global_vars)
            counter[0] += 1
            self.out(f"[{counter[0]}/{total}] FROM {base_name}" + (f" AS {stage.name}" if stage.name else ""))
            state = self._base(base_name, stages)
            state.args = {}  # ARGs before FROM serve FROM lines; a stage sees one only if it declares it
            self._global_args = global_vars
            for instruction in stage.instructions:
                counter[0] += 1
                state = self._step(
                    state, instruction, context, stages, build_args, parsed.file, counter[0], total
                )
            stages[stage.name or str(stage.index)] = state
            stages[str(stage.index)] = state
        assert state is not None
        return self._finish(state, tag)

    def _build_steps(
        self, base: str, steps: list[df.Instruction], context: Path, *, tag: str | None = None
    ) -> BuiltImage:
        total = len(steps) + 1
        self.out(f"[1/{total}] FROM {base}")
        state = self._base(base, {})
        for number, instruction in enumerate(steps, 2):
            state = self._step(state, instruction, context, {}, {}, "ci.yml", number, total)
        return self._finish(state, tag)

    # ---- steps -----------------------------------------------------------------------------------------

    def _base(self, name: str, stages: dict[str, State]) -> State:
        if name.lower() in stages:
            s = stages[name.lower()]
            return State(s.base, list(s.layers), json.loads(json.dumps(s.config)), s.key)
        if is_host(name):
            return State("host", [], {"Env": [f"PATH={DEFAULT_PATH}"]}, _key("host", host_identity()))
        if name == "scratch":
            return State(None, [], {}, _key("scratch"))
        from runner.images import ensure_image

        record = ensure_image(self.store, name)
        config = dict(record.config.get("config") or {})
        base = (config.get("Labels") or {}).get(BASE_LABEL)
        return State(base, list(record.layers), config, _key("image", record.id))

    def _step(
        self,
        state: State,
        ins: df.Instruction,
        context: Path,
        stages: dict[str, State],
        build_args: dict[str, str],
        file: str,
        number: int,
        total: int,
    ) -> State:
        variables = {**state.args, **state.env()}
        kw = ins.keyword
        flags = "".join(f"--{k}={v} " for k, v in ins.flags.items())
        shown = ins.args.strip().replace("\n", "\\n")  # a multi-line ci.yml `run:` stays one output line
        header = f"[{number}/{total}] {kw} {flags}{shown}".rstrip()
        if kw in ("ENV", "LABEL", "ARG"):
            for k, v in df.key_values(ins, variables, file):
                if kw == "ENV":
                    state.set_env(k, v)
                elif kw == "LABEL":
                    state.config.setdefault("Labels", {})[k] = v
                else:
                    default = self._global_args.get(k, "") if v == "\0unset" else v
                    state.args[k] = build_args.get(k, default)
            scope = variables if kw != "ARG" else state.args
            parent, state.key = state.key, _key(state.key, kw, ins.args, scope)
            self._config_step(parent, header, (kw, ins.args), state.key)
            return state
        if kw in ("WORKDIR", "USER", "CMD", "ENTRYPOINT", "EXPOSE", "SHELL", "STOPSIGNAL", "VOLUME"):
            self._config(state, ins, variables, file)
            parent, state.key = state.key, _key(state.key, kw, state.config)
            self._config_step(parent, header, (kw, ins.args), state.key)
            return state
        if kw in ("MAINTAINER", "HEALTHCHECK", "ONBUILD"):
            self.out(f"{header}  (ignored)")
            return state
        if kw == "RUN":
            return self._run(state, ins, variables, header)
        return self._copy(state, ins, variables, context, stages, file, header)

    def _config(self, state: State, ins: df.Instruction, variables: dict[str, str], file: str) -> None:
        kw, args = ins.keyword, ins.args.strip()
        if kw == "WORKDIR":
            path = df.substitute(args, variables)
            state.config["WorkingDir"] = os.path.normpath(
                os.path.join(state.config.get("WorkingDir") or "/", path)
            )
        elif kw == "USER":
            state.config["User"] = df.substitute(args, variables)
        elif kw in ("CMD", "ENTRYPOINT", "SHELL"):
            form = ins.json_form()
            if kw == "SHELL" and form is None:
                raise ImageError(
                    f'{file}:{ins.line}: SHELL needs the JSON form, e.g. SHELL ["/bin/bash", "-c"]'
                )
            value = form if form is not None else [*self._shell(state), args]
            state.config[{"CMD": "Cmd", "ENTRYPOINT": "Entrypoint", "SHELL": "Shell"}[kw]] = value
        elif kw == "EXPOSE":
            ports = state.config.setdefault("ExposedPorts", {})
            for port in df.substitute(args, variables).split():
                ports[port if "/" in port else f"{port}/tcp"] = {}
        elif kw == "STOPSIGNAL":
            state.config["StopSignal"] = df.substitute(args, variables)
        elif kw == "VOLUME":
            form = ins.json_form() or args.split()
            volumes = state.config.setdefault("Volumes", {})
            for v in form:
                volumes[df.substitute(v, variables)] = {}

    def _shell(self, state: State) -> list[str]:
        return list(state.config.get("Shell") or ["/bin/sh", "-c"])

    def _run(self, state: State, ins: df.Instruction, variables: dict[str, str], header: str) -> State:
        form = ins.json_form()
        argv = form if form is not None else [*self._shell(state), ins.args]
        workdir = state.config.get("WorkingDir") or "/"
        user = state.config.get("User") or "0"
        env = {**state.env(), **{k: v for k, v in state.args.items() if k not in state.env()}}
        env.setdefault("PATH", DEFAULT_PATH)
        # a layer built without the syscall filter is not one a confined job has shown it can build
        relaxed = ("seccomp=unconfined",) if self.seccomp == "unconfined" else ()
        key = _key(state.key, "RUN", argv, env, workdir, user, *relaxed)
        return self._layer(
            state,
            key,
            header,
            ("RUN", argv),
            lambda dest: self._run_into(state, argv, env, workdir, user, dest),
        )

    def _run_into(
        self, state: State, argv: list[str], env: dict[str, str], workdir: str, user: str, dest: Path
    ) -> None:
        from runner.sandbox import ContainerSpec, NetworkNamespace, Rootfs, SandboxError, run

        view = ImageView(self._dirs(state), state.base, self.paths)
        uid, gid = user_ids(user, view)
        if "HOME" not in env:  # the user's home from the image's /etc/passwd, as Docker sets it
            env = {**env, "HOME": home_of(view, uid)}
        rootfs = Rootfs.create(self.paths, layers=self._dirs(state), base=state.base)
        try:
            make_workdir(view, rootfs.uppers(), view.resolve(workdir)[0])
            spec = ContainerSpec(
                argv=argv, env=env, cwd=workdir, uid=uid, gid=gid, hostname="build", seccomp=self.seccomp
            )
            try:
                with NetworkNamespace.create(self.network) as net:
                    result = run(spec, rootfs=rootfs, network=net, on_output=self.log, paths=self.paths)
            except SandboxError as exc:
                raise ImageError(f"RUN could not start: {exc}") from None
            if rootfs.userns_note:  # RUN went without a user namespace: say why (the layer is the same)
                self.out("  " + rootfs.userns_note)
            if not result.ok:
                what = result.reason if result.reason != "exited" else f"exit code {result.exit_code}"
                raise ImageError(f"RUN {' '.join(argv[-1:])!s} failed ({what})")
            rootfs.close_templates()
            uppers = rootfs.uppers()
            root_upper = uppers.pop("")
            for target, upper in uppers.items():  # host base: /usr and /etc changes become usr/ and etc/
                if any(upper.iterdir()):
                    os.rename(upper, root_upper / target)
            os.rename(root_upper, dest)
        finally:
            rootfs.destroy()

    def _copy(
        self,
        state: State,
        ins: df.Instruction,
        variables: dict[str, str],
        context: Path,
        stages: dict[str, State],
        file: str,
        header: str,
    ) -> State:
        sources, dest = df.copy_args(ins, variables, file)
        # `.` and a trailing `/` or `/.` name a directory (`WORKDIR /app` + `COPY a.txt .` -> /app/a.txt)
        into_dir = dest.endswith(("/", "/.")) or dest in (".", "..") or dest.endswith("/..")
        dest = os.path.normpath(os.path.join(state.config.get("WorkingDir") or "/", dest))
        # through the parent image's symlinks (COPY x /bin/ on a merged-/usr image lands in /usr/bin), and
        # into an existing directory even without a trailing slash, as Docker does
        view = ImageView(self._dirs(state), state.base, self.paths)
        dest, kind = view.resolve(dest)
        dest = dest.rstrip("/") + "/" if into_dir or kind == "dir" else dest
        # the directories the copy lands in: those the image has are made with its mode and owner, so
        # that `COPY x /tmp/dir/` leaves /tmp world-writable and a user's home stays theirs
        dirs = [part for part in (dest if dest.endswith("/") else os.path.dirname(dest)).split("/") if part]

        def prepare(layer: Path) -> None:
            layer.mkdir()
            make_dirs(view, layer, dirs, 0)

        owner = owner_ids(ins.flags.get("chown", ""), file, ins.line, view)
        mode = parse_mode(ins.flags.get("chmod", ""), file, ins.line)
        if ins.flags.get("from"):
            return self._copy_from(state, ins, sources, dest, stages, owner, header, prepare, mode)
        if ins.keyword == "ADD" and any("://" in src for src in sources):
            raise ImageError(f"{file}:{ins.line}: ADD from a URL is not supported: fetch it in a RUN step")
        rules = ctx.load_dockerignore(context)
        try:
            paths = ctx.expand_sources(context, sources, rules)
        except ImageError as exc:
            raise ImageError(f"{file}:{ins.line}: {exc}") from None
        digest = ctx.content_digest(context, paths, rules)
        key = _key(state.key, ins.keyword, sources, dest, owner, mode, digest)

        archives = [p for p in paths if ins.keyword == "ADD" and _is_tar(p)]

        def make(layer: Path) -> None:
            prepare(layer)
            plain = [p for p in paths if p not in archives]
            if plain:
                ctx.copy_into_layer(context, plain, dest, layer, rules, owner, mode)
            for archive in archives:  # ADD extracts local tar archives, as Docker does
                _extract(archive, layer / dest.strip("/"))

        return self._layer(state, key, header, (ins.keyword, sources, dest, owner), make, files=digest)

    def _copy_from(
        self,
        state: State,
        ins: df.Instruction,
        sources: list[str],
        dest: str,
        stages: dict[str, State],
        owner: tuple[int, int],
        header: str,
        prepare: Callable[[Path], None],
        mode: int | None = None,
    ) -> State:
        name = ins.flags["from"].lower()
        source = stages.get(name)
        if source is None:
            source = self._base(ins.flags["from"], stages)  # an image reference
        chmod = [] if mode is None else [mode]  # keys without --chmod stay what they were
        key = _key(state.key, "COPY --from", source.key, sources, dest, owner, *chmod)

        def make(layer: Path) -> None:
            from runner.sandbox import Rootfs
            from runner.sandbox.copyout import copy_out

            prepare(layer)
            existing = set(layer.rglob("*"))
            with Rootfs.create(self.paths, layers=self._dirs(source), base=source.base) as rootfs:
                for src in sources:
                    copy_out(rootfs, src, layer, dest, owner)
            if mode is not None:  # --chmod: what was copied, not the directories above it
                for path in layer.rglob("*"):
                    if path not in existing and not path.is_symlink():
                        os.chmod(path, mode)

        return self._layer(state, key, header, ("COPY --from", name, sources, dest), make)

    # ---- layers and the cache --------------------------------------------------------------------------

    def _layer(
        self,
        state: State,
        key: str,
        header: str,
        what: Any,
        make: Callable[[Path], None],
        *,
        files: str | None = None,
    ) -> State:
        layer_id = "sha256:" + key
        short = key[:12]
        if not self.no_cache and self.store.layer(layer_id) is None and self._from_remote(layer_id, key):
            self.out(header)
            self.out(f"  CACHED {short} (from {self.remote})")
            self.cached += 1
            self._missed = False
        elif not self.no_cache and self.store.layer(layer_id) is not None:
            self.out(header)
            self.out(f"  CACHED {short}")
            self.store.touch_layers([layer_id])
            self.cached += 1
            self._missed = False
        else:
            reason = self._miss_reason(state.key, what, files)
            self.out(header)
            self.out(f"  building {short} ({reason})")
            started = time.monotonic()
            staging = self.paths.tmp / f"b{uuid.uuid4().hex[:12]}"
            try:
                make(staging)
                if self.no_cache and self.store.layer(layer_id) is not None:
                    self.store._remove_layer(layer_id)
                self.store.commit_layer(staging, layer_id, parent=state.layers[-1] if state.layers else None)
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
            self._remember(state.key, what, files, key)
            self._missed = True
            self._to_remote(layer_id, key)
            self.out(f"  built {short} in {time.monotonic() - started:.2f}s")
        self.steps += 1
        state.layers.append(layer_id)
        state.key = key
        return state

    steps = 0
    cached = 0
    _missed = False
    _global_args: dict[str, str] = {}  # ARGs before the first FROM, replaced per build

    @property
    def remote(self) -> str | None:
        from runner.images import remote_cache

        return remote_cache.target()

    def _from_remote(self, layer_id: str, key: str) -> bool:
        """A layer another worker built, from the shared registry cache; False (and said why) if not."""
        if self.remote is None:
            return False
        from runner.images import remote_cache

        try:
            return remote_cache.fetch(self.store, layer_id, key, self.remote)
        except (ImageError, OSError) as exc:
            self.out(f"  cache registry {self.remote}: {exc}; building instead")
            return False

    def _to_remote(self, layer_id: str, key: str) -> None:
        if self.remote is None:
            return
        from runner.images import remote_cache

        try:
            remote_cache.publish(self.store, layer_id, key, self.remote)
            self.out(f"  pushed {key[:12]} to {self.remote}")
        except (ImageError, OSError) as exc:
            self.out(f"  cache registry {self.remote}: could not push {key[:12]}: {exc}")

    def _config_step(self, parent: str, header: str, what: Any, key: str) -> None:
        """A step that only changes the config costs nothing and makes no layer; like every step it is shown
        CACHED when an earlier build reached the same state, else as built."""
        self.out(header)
        known = read_json(self._index(parent))
        seen = (known or {}).get(json.dumps(what, default=str)) or {}
        if not self.no_cache and seen.get("key") == key:
            self.out(f"  CACHED {key[:12]}")
        else:
            self.out(f"  built {key[:12]} (config only)")
            self._remember(parent, what, None, key)
            if known is not None:  # a known state changed (e.g. an ARG's value): the next miss says so
                self._missed = True

    def _index(self, parent: str) -> Path:
        return self.index_dir / f"{parent[:32]}.json"

    def _remember(self, parent: str, what: Any, files: str | None, key: str) -> None:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        with flocked(self.index_dir / ".lock"):  # builds running at once must not lose each other's entries
            data = read_json(self._index(parent)) or {}
            data[json.dumps(what, default=str)] = {"files": files, "key": key}
            write_json(self._index(parent), data)

    def _miss_reason(self, parent: str, what: Any, files: str | None) -> str:
        """Why a step missed, from what earlier builds recorded under the same parent layer."""
        if self.no_cache:
            return "--no-cache"
        known = read_json(self._index(parent))
        if known is None:
            return "the step before it was rebuilt" if self._missed else "not built before"
        seen = known.get(json.dumps(what, default=str))
        if seen is None:
            return "instruction new or changed"
        if files is not None and seen.get("files") != files:
            return "the copied files changed"
        return "layer no longer in the store"

    def _dirs(self, state: State) -> list[Path]:
        return [self.store.layer_path(layer_id) for layer_id in reversed(state.layers)]

    def _finish(self, state: State, tag: str | None) -> BuiltImage:
        config = dict(state.config)
        if state.base:
            config.setdefault("Labels", {})[BASE_LABEL] = state.base
        document = {
            "architecture": "amd64" if os.uname().machine == "x86_64" else os.uname().machine,
            "os": "linux",
            "config": config,
            # our layer ids until the image is packed for export or push, where the real diff_ids replace them
            "rootfs": {"type": "layers", "diff_ids": list(state.layers)},
        }
        config_bytes = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        record = self.store.put_image(config_bytes, list(state.layers))
        if tag:
            from runner.images.reference import parse_ref

            self.store.tag(parse_ref(tag), record.id)
        self.out(f"image {record.id[7:19]}" + (f" tagged {tag}" if tag else ""))
        return BuiltImage(record.id, state.base, self._dirs(state), config, self.steps, self.cached)


def _is_tar(path: Path) -> bool:
    import tarfile

    return path.is_file() and tarfile.is_tarfile(path)


def _extract(archive: Path, dest: Path) -> None:
    """ADD's archive extraction, with tarfile's `data` filter: no absolute paths, no `..`, no devices."""
    import tarfile

    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
            else:  # Python before 3.11.4 (Debian 12's 3.11.2): the same refusals, by hand
                tar.extractall(dest, members=_safe_members(tar, dest, archive.name))
    except (tarfile.TarError, OSError) as exc:
        raise ImageError(f"ADD {archive.name}: cannot extract: {exc}") from None


def _safe_members(tar: Any, dest: Path, name: str) -> list[Any]:
    """What tarfile's `data` filter allows: regular files, dirs and links that stay inside `dest`."""
    root = dest.resolve()
    members = []
    for member in tar.getmembers():
        target = (root / member.name.lstrip("/")).resolve()
        if target != root and root not in target.parents:
            raise ImageError(f"ADD {name}: cannot extract: {member.name} would land outside the destination")
        if member.issym() or member.islnk():
            link = (
                (target.parent / member.linkname).resolve()
                if member.issym()
                else (root / member.linkname).resolve()
            )
            if member.linkname.startswith("/") or (link != root and root not in link.parents):
                raise ImageError(
                    f"ADD {name}: cannot extract: link {member.name} points outside the destination"
                )
        elif not (member.isfile() or member.isdir()):
            continue  # devices and fifos are not extracted
        member.name = member.name.lstrip("/")
        member.mode &= 0o755 if member.isdir() else 0o644 | (member.mode & 0o111)
        members.append(member)
    return members
