"""Steps run as on GitHub Actions and GitLab: bash -e -o pipefail where the image has bash, else sh -e."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runner.pipeline.job import step_argv
from runner.sandbox import ContainerSpec, Rootfs, run
from runner.settings import Paths

pytestmark = pytest.mark.kernel


def _run(rootfs: Rootfs, paths: Paths, script: str) -> tuple[int, list[str]]:
    out: list[bytes] = []
    result = run(
        ContainerSpec(step_argv(script), cwd="/"),
        rootfs=rootfs,
        paths=paths,
        on_output=lambda s, line: out.append(line),
    )
    return result.exit_code, [x.decode() for x in out]


def test_bash_with_pipefail_on_the_host_image(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "home")
    with Rootfs.create(paths) as rootfs:
        code, out = _run(rootfs, paths, 'echo "$BASH_VERSION" | cut -c1; [[ 1 == 1 ]] && echo brackets')
        assert code == 0 and out[1] == "brackets" and out[0].isdigit()
        assert _run(rootfs, paths, "false | true; echo unreachable") == (1, [])
        assert _run(rootfs, paths, "echo 'quotes \"survive\" $((1+2))'") == (0, ['quotes "survive" $((1+2))'])


def test_posix_sh_with_errexit_in_an_image_without_bash(tmp_path: Path) -> None:
    busybox = shutil.which("busybox")
    assert busybox, "busybox-static is needed (scripts/setup --test installs it)"
    layer = tmp_path / "layer"
    (layer / "bin").mkdir(parents=True)
    shutil.copy(busybox, layer / "bin" / "busybox")
    for tool in ("sh", "echo", "false"):
        (layer / "bin" / tool).symlink_to("busybox")
    paths = Paths(tmp_path / "home")
    with Rootfs.create(paths, layers=[layer], base=None) as rootfs:
        assert _run(rootfs, paths, "echo one; false; echo unreachable") == (1, ["one"])
        assert _run(rootfs, paths, "false | echo piped") == (0, ["piped"])  # no pipefail in POSIX sh
