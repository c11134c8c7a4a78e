"""Steps run as on GitHub Actions and GitLab: bash -e -o pipefail where the image has bash, else sh -e."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runner.pipeline.job import image_has_bash, step_argv
from runner.sandbox import ContainerSpec, Rootfs, run
from runner.settings import Paths

pytestmark = pytest.mark.kernel


@pytest.fixture(params=["launcher", "known shell"])
def how(request: pytest.FixtureRequest) -> str:
    """The engine picks the shell from the image's files; the launcher decides inside the container."""
    return str(request.param)


def _run(rootfs: Rootfs, paths: Paths, script: str, how: str = "launcher") -> tuple[int, list[str]]:
    out: list[bytes] = []
    argv = step_argv(script) if how == "launcher" else step_argv(script, image_has_bash(rootfs, paths))
    result = run(
        ContainerSpec(argv, cwd="/"),
        rootfs=rootfs,
        paths=paths,
        on_output=lambda s, line: out.append(line),
    )
    return result.exit_code, [x.decode() for x in out]


def test_bash_with_pipefail_on_the_host_image(tmp_path: Path, how: str) -> None:
    paths = Paths(tmp_path / "home")
    with Rootfs.create(paths) as rootfs:
        assert image_has_bash(rootfs, paths) is True
        code, out = _run(rootfs, paths, 'echo "$BASH_VERSION" | cut -c1; [[ 1 == 1 ]] && echo brackets', how)
        assert code == 0 and out[1] == "brackets" and out[0].isdigit()
        assert _run(rootfs, paths, "false | true; echo unreachable", how) == (1, [])
        quoted = "echo 'quotes \"survive\" $((1+2))'"
        assert _run(rootfs, paths, quoted, how) == (0, ['quotes "survive" $((1+2))'])


def test_posix_sh_with_errexit_in_an_image_without_bash(tmp_path: Path, how: str) -> None:
    busybox = shutil.which("busybox")
    assert busybox, "busybox-static is needed (scripts/setup --test installs it)"
    layer = tmp_path / "layer"
    (layer / "bin").mkdir(parents=True)
    shutil.copy(busybox, layer / "bin" / "busybox")
    for tool in ("sh", "echo", "false"):
        (layer / "bin" / tool).symlink_to("busybox")
    paths = Paths(tmp_path / "home")
    with Rootfs.create(paths, layers=[layer], base=None) as rootfs:
        assert image_has_bash(rootfs, paths) is False
        assert _run(rootfs, paths, "echo one; false; echo unreachable", how) == (1, ["one"])
        assert _run(rootfs, paths, "false | echo piped", how) == (0, ["piped"])  # no pipefail in POSIX sh
