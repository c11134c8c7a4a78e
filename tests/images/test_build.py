"""Image builds end to end: RUN in real containers, the real store and registry, buildah, skopeo, umoci."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
from registry_helpers import Registry, Run, need, run

import runner.sandbox.container as container_module
from runner.config.spec import BuildInstruction
from runner.images.build import Builder, BuiltImage
from runner.images.errors import ImageError
from runner.images.imageview import ImageView
from runner.images.jobimage import instructions_from_spec
from runner.images.store import Store
from runner.sandbox import ContainerSpec, NetworkNamespace, Rootfs
from runner.sandbox import run as run_container
from runner.settings import Paths

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.fail("image build tests need root (RUN steps run in real containers)", pytrace=False)


# ---- helpers ---------------------------------------------------------------------------------------


class Spawns:
    """Counts containers started, by wrapping the sandbox's one entry point."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = container_module.spawn

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(container_module, "spawn", counting)


@pytest.fixture
def spawns(monkeypatch: pytest.MonkeyPatch) -> Spawns:
    return Spawns(monkeypatch)


def build(
    paths: Paths, context: Path, dockerfile: str, *, no_cache: bool = False, **kwargs: Any
) -> tuple[BuiltImage, list[str]]:
    """Build `dockerfile` (written into the context) and return the image and every printed line."""
    (context / "Dockerfile").write_text(textwrap.dedent(dockerfile).lstrip())
    lines: list[str] = []
    builder = Builder(paths, no_cache=no_cache, out=lines.append)
    built = builder.build_dockerfile(context / "Dockerfile", context, **kwargs)
    return built, lines


def outcomes(lines: list[str], *, config: bool = False) -> list[str]:
    """Per layer-making step (and config-only step if asked): 'CACHED' or why it was built, in order."""
    found = []
    keyword = ""
    for line in lines:
        text = line.strip()
        if text.startswith("["):
            keyword = text.split()[1]
        elif keyword in ("RUN", "COPY", "ADD") or config:
            if text.startswith("CACHED "):
                found.append("CACHED")
            elif text.startswith("building "):
                found.append(text.partition("(")[2].rstrip(")"))
            elif text.endswith("(config only)"):
                found.append("config only")
    return found


def in_image(paths: Paths, built: BuiltImage, script: str) -> tuple[int, str]:
    """Run `sh -c script` in a container over the built image; (exit code, stdout+stderr)."""
    out: list[bytes] = []
    rootfs = Rootfs.create(paths, layers=built.layer_dirs, base=built.base)
    try:
        env = dict(str(e).partition("=")[::2] for e in built.config.get("Env") or [])  # type: ignore[misc]
        spec = ContainerSpec(argv=["sh", "-c", script], env=env, cwd="/")
        with NetworkNamespace.create("none") as net:
            result = run_container(
                spec, rootfs=rootfs, network=net, on_output=lambda _s, line: out.append(line), paths=paths
            )
    finally:
        rootfs.destroy()
    return result.exit_code, "\n".join(x.decode() for x in out)


def layer_dirs(paths: Paths) -> set[str]:
    return {p.name for p in paths.layers.iterdir() if p.is_dir()} if paths.layers.exists() else set()


def leftovers(paths: Paths) -> list[str]:
    return sorted(p.name for p in paths.tmp.iterdir()) if paths.tmp.exists() else []


def runner_cli(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RUNNER_HOME=str(home), NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def context(tmp_path: Path) -> Path:
    directory = tmp_path / "context"
    directory.mkdir()
    return directory


THREE_STEPS = """
    FROM host
    COPY app/ /app/
    RUN cat /app/main.txt > /app/copied.txt && echo run-output
    RUN wc -c /app/copied.txt > /app/size.txt
    ENV GREETING=hello
"""


# ---- the cache ---------------------------------------------------------------------------------------


def test_cold_build_then_every_step_cached_without_a_container(
    paths: Paths, context: Path, spawns: Spawns
) -> None:
    (context / "app").mkdir()
    (context / "app" / "main.txt").write_text("v1\n")
    cold, lines = build(paths, context, THREE_STEPS, tag="three:1")
    assert outcomes(lines, config=True) == [
        "not built before",
        "the step before it was rebuilt",
        "the step before it was rebuilt",
        "config only",  # ENV makes no layer, but says what it did
    ]
    assert spawns.count == 2
    assert "  run-output" in lines  # the RUN's own output is shown
    assert (cold.steps, cold.cached) == (3, 0)
    layers_after_cold = layer_dirs(paths)
    assert len(layers_after_cold) == 3

    warm, lines = build(paths, context, THREE_STEPS, tag="three:1")
    assert outcomes(lines, config=True) == ["CACHED", "CACHED", "CACHED", "CACHED"]  # ENV too
    assert spawns.count == 2  # no container started on the cached build
    assert layer_dirs(paths) == layers_after_cold  # and no layer made
    assert warm.image_id == cold.image_id
    assert (warm.steps, warm.cached) == (3, 3)
    assert leftovers(paths) == []
    # every cached step shows its short key, the one the cold build printed
    keys_cold = [line.split()[1] for line in lines if line.strip().startswith("CACHED")]
    assert all(len(k) == 12 for k in keys_cold)
    assert Store(paths).resolve("three:1").id == cold.image_id

    code, out = in_image(paths, warm, "cat /app/copied.txt /app/size.txt; echo $GREETING")
    assert (code, out) == (0, "v1\n3 /app/copied.txt\nhello")


def test_touching_a_copied_file_keeps_the_cache_and_changing_it_misses_from_that_step(
    paths: Paths, context: Path, spawns: Spawns
) -> None:
    dockerfile = """
        FROM host
        RUN echo before-copy > /before.txt
        COPY data.txt /data.txt
        RUN cat /data.txt > /after.txt
    """
    data = context / "data.txt"
    data.write_text("one\n")
    build(paths, context, dockerfile)
    started = spawns.count

    os.utime(data, (1_000_000, 1_000_000))  # a fresh checkout: same content, new mtime
    _, lines = build(paths, context, dockerfile)
    assert outcomes(lines) == ["CACHED", "CACHED", "CACHED"]
    assert spawns.count == started

    data.write_text("two\n")
    built, lines = build(paths, context, dockerfile)
    assert outcomes(lines) == ["CACHED", "the copied files changed", "the step before it was rebuilt"]
    assert spawns.count == started + 1  # only the RUN after the COPY ran again
    assert in_image(paths, built, "cat /before.txt /after.txt") == (0, "before-copy\ntwo")

    data.write_text("one\n")  # back to the first content: the first build's layers serve again
    _, lines = build(paths, context, dockerfile)
    assert outcomes(lines) == ["CACHED", "CACHED", "CACHED"]

    os.chmod(data, 0o755)  # mode is part of the key
    _, lines = build(paths, context, dockerfile)
    assert outcomes(lines)[1] == "the copied files changed"


def test_a_changed_instruction_says_so_and_no_cache_rebuilds_everything(
    paths: Paths, context: Path, spawns: Spawns
) -> None:
    build(paths, context, "FROM host\nRUN echo a > /a\nRUN echo b > /b\n")
    _, lines = build(paths, context, "FROM host\nRUN echo a > /a\nRUN echo B > /b\n")
    assert outcomes(lines) == ["CACHED", "instruction new or changed"]
    before = spawns.count
    built, lines = build(paths, context, "FROM host\nRUN echo a > /a\nRUN echo B > /b\n", no_cache=True)
    assert outcomes(lines) == ["--no-cache", "--no-cache"]
    assert spawns.count == before + 2
    assert built.cached == 0
    assert in_image(paths, built, "cat /a /b") == (0, "a\nB")
    _, lines = build(paths, context, "FROM host\nRUN echo a > /a\nRUN echo B > /b\n")
    assert outcomes(lines) == ["CACHED", "CACHED"]  # --no-cache refreshed the layers, keys unchanged


def test_build_args_and_env_are_part_of_the_key(paths: Paths, context: Path) -> None:
    dockerfile = "FROM host\nARG FLAVOUR=plain\nRUN echo $FLAVOUR > /flavour\n"
    plain, _ = build(paths, context, dockerfile)
    spicy, lines = build(paths, context, dockerfile, build_args={"FLAVOUR": "spicy"})
    assert outcomes(lines, config=True) == ["config only", "the step before it was rebuilt"]
    assert in_image(paths, plain, "cat /flavour") == (0, "plain")
    assert in_image(paths, spicy, "cat /flavour") == (0, "spicy")
    assert plain.image_id != spicy.image_id


def test_global_args_reach_a_stage_only_when_it_declares_them(paths: Paths, context: Path) -> None:
    dockerfile = """
        ARG VERSION=1
        ARG BASE=host
        FROM $BASE
        RUN echo "[$VERSION]" > /undeclared
        ARG VERSION
        RUN echo "[$VERSION]" > /declared
    """
    built, _ = build(paths, context, dockerfile)
    assert in_image(paths, built, "cat /undeclared /declared") == (0, "[]\n[1]")
    other, lines = build(paths, context, dockerfile, build_args={"VERSION": "2"})
    assert outcomes(lines)[0] == "CACHED"  # the step that does not see VERSION is not rebuilt
    assert outcomes(lines)[1] != "CACHED"
    assert in_image(paths, other, "cat /undeclared /declared") == (0, "[]\n[2]")


def test_a_multi_line_run_is_one_header_line(paths: Paths, context: Path) -> None:
    lines: list[str] = []
    steps = instructions_from_spec([BuildInstruction("run", ("echo one > /one\necho two > /two\n",))])
    built = Builder(paths, out=lines.append).build_steps("host", steps, context)
    assert "[2/2] RUN echo one > /one\\necho two > /two" in lines
    assert all("\n" not in line for line in lines)
    assert in_image(paths, built, "cat /one /two") == (0, "one\ntwo")


# ---- what lands in the image -----------------------------------------------------------------------


def test_config_instructions_land_in_the_image_config(paths: Paths, context: Path) -> None:
    built, _ = build(
        paths,
        context,
        """
        FROM host
        ARG VERSION=1.2
        ENV APP_HOME=/opt/app PATH=/opt/app/bin:/usr/bin:/bin
        ENV NAME="my app" LEVEL=${VERSION}-final
        WORKDIR $APP_HOME
        WORKDIR sub
        RUN pwd > where.txt && echo "v=$VERSION" >> where.txt
        LABEL org.example.version=$VERSION "org.example.title"="the app"
        USER 1000:1000
        RUN id -u > /tmp/uid
        EXPOSE 8080 53/udp
        ENTRYPOINT ["/opt/app/bin/start", "--verbose"]
        CMD serve --port 8080
        """,
        tag="configured:1",
    )
    stored = Store(paths).resolve("configured:1").config["config"]
    for config in (built.config, stored):
        # PATH came from the base and keeps its place, with the new value
        assert config["Env"] == [
            "PATH=/opt/app/bin:/usr/bin:/bin",
            "APP_HOME=/opt/app",
            "NAME=my app",
            "LEVEL=1.2-final",
        ]
        assert config["WorkingDir"] == "/opt/app/sub"
        assert config["User"] == "1000:1000"
        assert config["Labels"]["org.example.version"] == "1.2"
        assert config["Labels"]["org.example.title"] == "the app"
        assert config["Labels"]["org.runner.base"] == "host"
        assert config["Entrypoint"] == ["/opt/app/bin/start", "--verbose"]
        assert config["Cmd"] == ["/bin/sh", "-c", "serve --port 8080"]
        assert set(config["ExposedPorts"]) == {"8080/tcp", "53/udp"}
    assert "VERSION" not in json.dumps(built.config["Env"])  # ARG is not ENV
    assert in_image(paths, built, "cat /opt/app/sub/where.txt /tmp/uid") == (0, "/opt/app/sub\nv=1.2\n1000")


def test_user_names_resolve_in_the_image_being_built(paths: Paths, context: Path) -> None:
    built, _ = build(
        paths,
        context,
        """
        FROM host
        RUN useradd -u 1600 builder && groupadd -g 1700 team
        USER builder
        RUN echo "$(id -u):$(id -g):$HOME" > /tmp/as-builder
        USER nobody:team
        RUN echo "$(id -u):$(id -g)" > /tmp/as-nobody
        """,
    )
    assert in_image(paths, built, "cat /tmp/as-builder /tmp/as-nobody") == (
        0,
        "1600:1600:/home/builder\n65534:1700",
    )
    with pytest.raises(ImageError, match=r"^USER 'ghost': no user 'ghost' in the image's /etc/passwd$"):
        build(paths, context, "FROM host\nUSER ghost\nRUN true\n")


def test_run_deleting_a_host_file_and_replacing_a_directory(paths: Paths, context: Path) -> None:
    victim_file = Path("/etc/debian_version")
    victim_dir = Path("/usr/share/common-licenses")
    assert victim_file.is_file() and victim_dir.is_dir()  # this machine is Debian
    before = (victim_file.read_bytes(), sorted(os.listdir(victim_dir)))
    built, _ = build(
        paths,
        context,
        f"""
        FROM host
        RUN rm {victim_file} && rm -r {victim_dir} && echo now-a-file > {victim_dir}
        RUN echo later > /etc/later.txt
        """,
    )
    code, out = in_image(
        paths,
        built,
        f"test ! -e {victim_file} && echo gone; test -f {victim_dir} && cat {victim_dir}; cat /etc/later.txt",
    )
    assert (code, out) == (0, "gone\nnow-a-file\nlater")
    assert (victim_file.read_bytes(), sorted(os.listdir(victim_dir))) == before  # the host is untouched
    assert not Path("/etc/later.txt").exists()


def test_multi_stage_copy_from_with_chown(paths: Paths, context: Path) -> None:
    built, _ = build(
        paths,
        context,
        """
        FROM host AS builder
        RUN mkdir -p /out/bin /out/share && echo tool > /out/bin/tool && chmod 755 /out/bin/tool \\
            && echo doc > /out/share/doc && ln -s tool /out/bin/alias
        FROM host AS unused
        RUN echo never-needed > /x
        FROM host
        COPY --from=builder --chown=1234:55 /out/ /opt/
        COPY --from=0 /out/share/doc /single/renamed-doc
        COPY --from=builder --chmod=700 /out/share/ /private/
        """,
    )
    code, out = in_image(
        paths,
        built,
        "stat -c '%n %u:%g %a' /opt/bin/tool /opt/share/doc; readlink /opt/bin/alias;"
        " cat /single/renamed-doc; test ! -e /x && echo no-x; stat -c '%n %a' /private/doc",
    )
    assert code == 0, out
    assert out.splitlines() == [
        "/opt/bin/tool 1234:55 755",
        "/opt/share/doc 1234:55 644",
        "tool",
        "doc",
        "no-x",
        "/private/doc 700",
    ]
    _, again = build(paths, context, (context / "Dockerfile").read_text())
    assert set(outcomes(again)) == {"CACHED"}


def test_a_failing_run_is_one_clear_error_and_leaves_nothing(paths: Paths, context: Path) -> None:
    build(paths, context, "FROM host\nRUN echo ok > /ok\n")
    layers = layer_dirs(paths)
    with pytest.raises(ImageError) as info:
        build(paths, context, "FROM host\nRUN echo ok > /ok\nRUN echo half > /half && exit 3\n")
    message = str(info.value)
    assert "exit code 3" in message and "exit 3" in message
    assert "\n" not in message
    assert layer_dirs(paths) == layers
    assert leftovers(paths) == []
    records = (
        sorted(p.name for p in paths.run.iterdir() if not p.name.startswith("."))
        if paths.run.exists()
        else []
    )
    assert records == []  # no container or rootfs left for the crash sweep either


def test_runner_image_build_cli_errors_are_one_line(paths: Paths, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM host\nRUN false\n")
    result = runner_cli(paths.home, "image", "build", str(context))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("runner image build: RUN false failed (exit code 1)")
    (context / "Dockerfile").write_text("FROM host\nRUNN true\n")
    result = runner_cli(paths.home, "image", "build", str(context))
    assert (result.returncode, result.stderr.strip()) == (
        1,
        "runner image build: Dockerfile:2: unknown instruction 'RUNN'",
    )
    (context / "Dockerfile").write_text("FROM host\nCOPY ../escape /x\n")
    result = runner_cli(paths.home, "image", "build", str(context))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "runner image build: Dockerfile:2: COPY source '../escape' points outside the build context"
    )
    assert leftovers(paths) == []


def test_two_processes_building_the_same_image_at_once(paths: Paths, context: Path) -> None:
    (context / "data.txt").write_text("shared\n")
    (context / "Dockerfile").write_text(
        "FROM host\nCOPY data.txt /data.txt\nRUN sleep 0.3 && cat /data.txt > /out.txt\n"
    )
    env = dict(os.environ, RUNNER_HOME=str(paths.home))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "runner.cli", "image", "build", "-t", f"same:{n}", str(context)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in (1, 2)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0, out + err
    store = Store(paths)
    assert store.resolve("same:1").id == store.resolve("same:2").id
    assert len(layer_dirs(paths)) == 2
    assert leftovers(paths) == []
    _, lines = build(paths, context, (context / "Dockerfile").read_text())
    assert outcomes(lines) == ["CACHED", "CACHED"]


def test_copy_follows_the_images_symlinks_and_copies_into_existing_directories(
    paths: Paths, context: Path
) -> None:
    assert os.path.islink("/bin") and os.path.isdir("/usr/local/bin")  # merged /usr, as on Debian 12
    (context / "tool").write_text("#!/bin/sh\necho tool-ran\n")
    os.chmod(context / "tool", 0o755)
    built, _ = build(
        paths,
        context,
        """
        FROM host
        COPY tool /bin/
        COPY tool /usr/local/bin
        COPY tool /lib/extra/
        """,
    )
    code, out = in_image(
        paths,
        built,
        "test -L /bin && echo bin-is-a-link; ls /usr/bin/sh /usr/bin/tool /usr/lib/extra/tool;"
        " ls /usr/local/bin/tool; test -d /usr/local/bin && echo local-bin-is-a-dir; tool",
    )
    assert (code, out) == (
        0,
        "bin-is-a-link\n/usr/bin/sh\n/usr/bin/tool\n/usr/lib/extra/tool\n/usr/local/bin/tool\n"
        "local-bin-is-a-dir\ntool-ran",
    )


@pytest.mark.parametrize("workdir", ["/usr/src/app", "/etc/app", "/lib/app", "/tmp/app/deep", "/srv/app"])
def test_workdir_anywhere_on_the_host_base(paths: Paths, context: Path, workdir: str) -> None:
    built, _ = build(paths, context, f"FROM host\nWORKDIR {workdir}\nRUN echo here > file\n")
    real = workdir.replace("/lib/", "/usr/lib/")  # /lib is a symlink on merged /usr
    code, out = in_image(
        paths,
        built,
        f"cat {real}/file; test -L /lib && echo lib-is-a-link;"
        " stat -c %a /tmp; test ! -e /usr/usr && echo ok",
    )
    assert (code, out) == (0, "here\nlib-is-a-link\n1777\nok")


def test_copy_leaves_the_images_directories_mode_and_owner_alone(paths: Paths, context: Path) -> None:
    (context / "a.txt").write_text("a")
    (context / "sub").mkdir()
    (context / "sub" / "s.txt").write_text("s")
    built, _ = build(
        paths,
        context,
        """
        FROM host AS other
        RUN echo other > /other.txt
        FROM host
        RUN mkdir -p /home/app && chown 1500:1500 /home/app && chmod 700 /home/app
        COPY a.txt /tmp/new/
        COPY --chown=1500:1500 a.txt /home/app/.config/
        COPY sub /home/app/sub
        COPY --from=other /other.txt /home/app/from-stage/
        """,
    )
    code, out = in_image(
        paths,
        built,
        "stat -c '%n %a %u' /tmp /tmp/new /home/app /home/app/.config/a.txt /home/app/sub/s.txt"
        " /home/app/from-stage/other.txt",
    )
    assert code == 0, out
    assert out.splitlines() == [
        "/tmp 1777 0",  # still world-writable
        "/tmp/new 755 0",
        "/home/app 700 1500",  # still the user's
        "/home/app/.config/a.txt 644 1500",
        "/home/app/sub/s.txt 644 0",
        "/home/app/from-stage/other.txt 644 0",
    ]


def _whiteout(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))


def test_image_view_finds_paths_as_overlayfs_does(paths: Paths, tmp_path: Path) -> None:
    bottom, middle, top = (tmp_path / name for name in ("bottom", "middle", "top"))
    (bottom / "usr" / "bin").mkdir(parents=True)
    (bottom / "data" / "old").mkdir(parents=True)
    (bottom / "gone").mkdir()
    (bottom / "opaque" / "inner").mkdir(parents=True)
    os.symlink("usr/bin", bottom / "bin")
    os.symlink("/usr/lib", bottom / "lib")
    os.symlink("loop2", bottom / "loop1")
    os.symlink("loop1", bottom / "loop2")
    os.symlink("../usr/bin", bottom / "data" / "rel")
    (middle / "data").mkdir(parents=True)
    (middle / "data" / "old").write_text("a file over a directory")
    _whiteout(middle / "gone")
    (top / "opaque").mkdir(parents=True)
    os.setxattr(top / "opaque", "trusted.overlay.opaque", b"y")
    view = ImageView([top, middle, bottom], None, paths)
    assert view.resolve("/bin/x") == ("/usr/bin/x", "none")
    assert view.resolve("/bin") == ("/usr/bin", "dir")
    assert view.resolve("/lib/y") == ("/usr/lib/y", "none")
    assert view.resolve("/data/rel/z") == ("/usr/bin/z", "none")
    assert view.resolve("/data/old") == ("/data/old", "file")
    assert view.resolve("/data/old/under") == ("/data/old/under", "none")  # hidden by the file above
    assert view.resolve("/gone") == ("/gone", "none")
    assert view.resolve("/opaque/inner") == ("/opaque/inner", "none")
    with pytest.raises(ImageError, match="too many levels of symbolic links"):
        view.resolve("/loop1/x")
    on_host = ImageView([], "host", paths)
    assert on_host.resolve("/bin/") == ("/usr/bin", "dir")
    assert on_host.resolve("/usr/local/bin") == ("/usr/local/bin", "dir")


# ---- images from and to a registry -----------------------------------------------------------------


@pytest.fixture(scope="module")
def busybox(module_registry: Registry, buildah: Run, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`localhost:PORT/busybox:1` in the registry: static busybox, a /etc/motd file and a /opt/data dir."""
    root = tmp_path_factory.mktemp("busybox-root")
    (root / "bin").mkdir()
    binary = Path("/bin/busybox")
    assert binary.is_file(), "apt-get install -y busybox-static"
    (root / "bin" / "busybox").write_bytes(binary.read_bytes())
    os.chmod(root / "bin" / "busybox", 0o755)
    applets = subprocess.run(
        [str(binary), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    (root / "etc").mkdir()
    (root / "etc" / "motd").write_text("welcome\n")
    (root / "opt" / "data").mkdir(parents=True)
    (root / "opt" / "data" / "one").write_text("1\n")
    (root / "tmp").mkdir(mode=0o1777)
    auth = tmp_path_factory.mktemp("auth") / "auth.json"
    auth.write_text('{"auths": {}}')
    ref = f"localhost:{module_registry.host.rpartition(':')[2]}/busybox:1"
    container = buildah("from", "scratch").stdout.strip()
    buildah("copy", container, str(root), "/")
    buildah("config", "--env", "PATH=/bin", "--cmd", "sh", container)
    buildah("commit", "--format", "oci", container, "busybox-test")
    buildah("push", "--tls-verify=false", "--authfile", str(auth), "busybox-test", f"docker://{ref}")
    return ref


BUSYBOX_CHANGES = """
    FROM {base}
    RUN rm /etc/motd && rm -r /opt/data && echo replaced > /opt/data && echo built > /built.txt
    ENV STAGE=done
"""


def test_from_a_registry_image_and_run_in_it(
    paths: Paths, context: Path, busybox: str, spawns: Spawns
) -> None:
    built, lines = build(paths, context, BUSYBOX_CHANGES.format(base=busybox), tag="bb-built:1")
    assert built.base is None  # over the pulled layers, not the host
    code, out = in_image(
        paths,
        built,
        "cat /built.txt /opt/data; test ! -e /etc/motd && echo no-motd; echo $STAGE;"
        " test ! -e /usr/bin/python3 && echo no-host",
    )
    assert (code, out) == (0, "built\nreplaced\nno-motd\ndone\nno-host")
    count = spawns.count
    _, lines = build(paths, context, BUSYBOX_CHANGES.format(base=busybox))
    assert outcomes(lines) == ["CACHED"]
    assert spawns.count == count


def test_a_built_image_exported_reads_back_with_skopeo_and_umoci(
    paths: Paths, context: Path, busybox: str, tmp_path: Path
) -> None:
    build(paths, context, BUSYBOX_CHANGES.format(base=busybox), tag="bb-export:1")
    archive = tmp_path / "image.tar"
    result = runner_cli(paths.home, "image", "export", "bb-export:1", "-o", str(archive))
    assert result.returncode == 0, result.stderr
    layout = tmp_path / "layout"
    run(need("skopeo"), "copy", f"oci-archive:{archive}", f"oci:{layout}:img")
    bundle = tmp_path / "bundle"
    run(need("umoci"), "unpack", "--image", f"{layout}:img", str(bundle))
    rootfs = bundle / "rootfs"
    assert (rootfs / "built.txt").read_text() == "built\n"
    assert (rootfs / "opt" / "data").read_text() == "replaced\n"  # a directory replaced by a file
    assert not os.path.lexists(rootfs / "etc" / "motd")  # the whiteout applied
    assert (rootfs / "bin" / "busybox").is_file() and os.readlink(rootfs / "bin" / "sh") == "busybox"
    config = json.loads((bundle / "config.json").read_text())
    assert "STAGE=done" in config["process"]["env"]


def test_a_built_image_pushed_pulls_back_with_skopeo(
    paths: Paths, context: Path, busybox: str, module_registry: Registry, tmp_path: Path
) -> None:
    port = module_registry.host.rpartition(":")[2]
    target = f"localhost:{port}/built/app:1"
    build(paths, context, BUSYBOX_CHANGES.format(base=busybox), tag=target)
    result = runner_cli(paths.home, "image", "push", target)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "pulled"
    run(need("skopeo"), "copy", "--src-tls-verify=false", f"docker://{target}", f"dir:{out}")
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["layers"]) == 2  # busybox's layer and the RUN's
    for layer in manifest["layers"]:
        blob = out / layer["digest"].partition(":")[2]
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == layer["digest"].partition(":")[2]
    top = out / manifest["layers"][-1]["digest"].partition(":")[2]
    with tarfile.open(top) as tar:
        names = {m.name.lstrip("./") for m in tar.getmembers()}
    assert {"built.txt", "etc/.wh.motd", "opt/data"} <= names
    config = json.loads((out / manifest["config"]["digest"].partition(":")[2]).read_text())
    assert "STAGE=done" in config["config"]["Env"]
    assert len(config["rootfs"]["diff_ids"]) == 2


# ---- deep images -----------------------------------------------------------------------------------


def test_an_image_of_120_run_layers_builds_and_runs(paths: Paths, context: Path) -> None:
    steps = "".join(f"RUN echo {i} > /f{i}\n" for i in range(1, 121))
    built, _ = build(paths, context, "FROM host\n" + steps, tag="deep:1")
    assert len(built.layer_dirs) == 120
    total = sum(len(str(p)) + 1 for p in built.layer_dirs)
    assert total > 4096  # these paths alone would not fit in one page of mount options
    code, out = in_image(paths, built, "cat /f1 /f60 /f120; ls / | grep -c '^f[0-9]'")
    assert (code, out) == (0, "1\n60\n120\n120")


# ---- the ci.yml forms through `runner exec` --------------------------------------------------------


def _git(repo: Path, *args: str) -> None:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
        GIT_CONFIG_GLOBAL="/dev/null",
    )
    subprocess.run(["git", "-C", str(repo), *args], capture_output=True, env=env, check=True)


CI_YML = """
jobs:
  steps-image:
    image:
      from: host
      build:
        - copy: requirements.txt
        - run: cat /src/requirements.txt > /from-steps.txt
        - env: {APP_MODE: test}
    steps:
      - run: cat /from-steps.txt; echo "mode=$APP_MODE"
  dockerfile-image:
    image: {dockerfile: ci/Dockerfile, context: .}
    steps:
      - run: cat /from-dockerfile.txt; echo "flavour=$FLAVOUR"
  registry-image:
    image:
      from: {busybox}
      build:
        - run: echo from-registry > /registry.txt
    steps:
      - run: cat /registry.txt; test ! -e /usr/bin/python3 && echo not-the-host
"""

CI_DOCKERFILE = """\
FROM host
COPY requirements.txt /r.txt
RUN sed 's/^/df:/' /r.txt > /from-dockerfile.txt
ENV FLAVOUR=docker
"""


def test_ci_yml_image_forms_build_and_then_hit_the_cache(tmp_path: Path, busybox: str) -> None:
    repo = tmp_path / "repo"
    (repo / "ci").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "ci.yml").write_text(CI_YML.replace("{busybox}", busybox))
    (repo / "ci" / "Dockerfile").write_text(CI_DOCKERFILE)
    (repo / "requirements.txt").write_text("req==1\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "initial")
    home = tmp_path / "home"

    first = runner_cli(home, "exec", str(repo))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "[steps-image] req==1" in first.stdout and "[steps-image] mode=test" in first.stdout
    assert "[dockerfile-image] df:req==1" in first.stdout
    assert "[dockerfile-image] flavour=docker" in first.stdout
    assert "[registry-image] from-registry" in first.stdout
    assert "[registry-image] not-the-host" in first.stdout
    built = [line for line in first.stdout.splitlines() if "building " in line]
    assert len(built) == 5, first.stdout  # a COPY and a RUN per host job, a RUN over busybox

    second = runner_cli(home, "exec", str(repo))
    assert second.returncode == 0, second.stdout + second.stderr
    lines = second.stdout.splitlines()
    assert not any("building " in line for line in lines), second.stdout
    for job, steps in (("steps-image", 3), ("dockerfile-image", 3), ("registry-image", 1)):
        headers = [line for line in lines if line.startswith(f"[{job}] [") and " FROM " not in line]
        cached = [line for line in lines if line.startswith(f"[{job}]   CACHED ")]
        assert len(headers) == len(cached) == steps, second.stdout  # every step says CACHED
    assert "[registry-image] from-registry" in second.stdout
    assert "[dockerfile-image] flavour=docker" in second.stdout

    (repo / "requirements.txt").write_text("req==2\n")  # uncommitted changes are part of the workspace
    third = runner_cli(home, "exec", str(repo))
    assert third.returncode == 0, third.stdout + third.stderr
    assert "[dockerfile-image] df:req==2" in third.stdout
    assert third.stdout.count("(the copied files changed)") == 2, third.stdout
