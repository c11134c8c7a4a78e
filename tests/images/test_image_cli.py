"""The `runner image` command functions: human output, exit codes, one-line errors without tracebacks."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from image_merge import image_from_tars
from image_tars import TarBuilder

from runner.images import cli_impl
from runner.images.errors import ImageError
from runner.images.reference import parse_ref
from runner.images.store import Store
from runner.settings import Paths

pytestmark = pytest.mark.kernel

LAYER = TarBuilder().file("hello", b"x" * 5000).bytes()


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("2048", 2048), ("500M", 500 << 20), ("1.5G", 3 << 29), ("10k", 10240), ("1GiB", 1 << 30)],
)
def test_parse_size(text: str, value: int) -> None:
    assert cli_impl.parse_size(text) == value


def test_parse_size_refuses_garbage() -> None:
    with pytest.raises(ImageError, match="invalid size"):
        cli_impl.parse_size("lots")


def test_ls_rm_prune(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    record = image_from_tars(store, [LAYER])
    store.tag(parse_ref("python:3.12"), record.id)
    store.tag(parse_ref("localhost:5000/team/app:v1"), record.id)
    assert cli_impl.ls(store) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "SIZE", "LAST", "USED"]
    rows = sorted(line.split()[:3] for line in lines[1:])
    short = record.id.partition(":")[2][:12]
    assert rows == [["localhost:5000/team/app", "v1", short], ["python", "3.12", short]]
    assert cli_impl.rm(store, "python:3.12") == 0
    assert capsys.readouterr().out.strip() == "Untagged: python:3.12"
    assert cli_impl.rm(store, "localhost:5000/team/app:v1") == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["Untagged: localhost:5000/team/app:v1", f"Deleted: {record.id}"]
    assert cli_impl.prune(store, "0") == 0
    assert capsys.readouterr().out.strip() == "Removed 0 layers, freed 0 B"


def test_errors_are_one_line(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_impl.rm(store, "nothing:here") == 1
    assert cli_impl.prune(store, "lots") == 1
    assert cli_impl.pull(store, "Bad/Name") == 1
    assert cli_impl.export(store, "nothing:here", str(tmp_path / "x.tar")) == 1
    assert cli_impl.import_(store, str(tmp_path / "missing.tar")) == 1
    assert cli_impl.push(store, "127.0.0.1:9/none:1") == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 6 and all(line.startswith("error: ") for line in err)
    assert "Traceback" not in "".join(err)
    assert "no image 'nothing:here'" in err[0] and "lowercase" in err[2]


def test_pull_from_unreachable_registry_is_one_line(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_impl.pull(store, "127.0.0.1:9/none:1") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: 127.0.0.1:9:") and "\n" not in err


def test_export_and_import(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = image_from_tars(store, [LAYER])
    store.tag(parse_ref("localhost/x:1"), record.id)
    out = tmp_path / "x.tar"
    assert cli_impl.export(store, "localhost/x:1", str(out)) == 0
    assert tarfile.is_tarfile(out)
    other = Store(Paths(tmp_path / "other"))
    assert cli_impl.import_(other, str(out), "localhost/y:2") == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"Exported {record.id} to {out}"
    assert (
        printed[1].startswith("Imported sha256:")
        and "localhost/x:1" in printed[1]
        and "localhost/y:2" in printed[1]
    )
