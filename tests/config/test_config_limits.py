"""`resources:` disk, io and bandwidth: units, positioned errors, the compiled spec, the schema, and
the sandbox's pure pieces (io.max and blkio lines, whole-disk lookup, the LOOP_CONFIGURE argument)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from runner.config import ConfigError, EvalContext, compile_pipeline, load
from runner.config.schema import generate
from runner.config.spec import PipelineSpec, Resources
from runner.config.units import parse_bandwidth, parse_byte_rate, parse_disk
from runner.pipeline.job import DEFAULT_PIDS, job_limits
from runner.sandbox.disk import LO_FLAGS_AUTOCLEAR, loop_config
from runner.sandbox.limits import io_max_lines, v1_lines, whole_disk
from runner.sandbox.types import Limits


def compile_text(text: str) -> PipelineSpec:
    return compile_pipeline(load(Path("ci.yml"), text=text), EvalContext())


def errors_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        compile_text(text)
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "bits"),
    [
        ("10mbit", 10_000_000),
        ("8mbit", 8_000_000),
        ("512kbit", 512_000),
        ("1mbps", 8_000_000),  # tc: bps counts bytes
        ("1Mibit", 1_048_576),
        ("1.5gbit", 1_500_000_000),
        (" 10 Mbit ", 10_000_000),
    ],
)
def test_bandwidth_units_are_tcs(text: str, bits: int) -> None:
    assert parse_bandwidth(text) == bits


@pytest.mark.parametrize("text", ["10", "lots", "10mb", "mbit", "0bit", "-1mbit"])
def test_bad_bandwidths_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"10mbit|at least 8bit"):
        parse_bandwidth(text)
    with pytest.raises(ValueError, match="a unit is needed"):
        parse_bandwidth(10)


def test_byte_rates_and_disk_sizes() -> None:
    assert parse_byte_rate("10M") == parse_byte_rate("10M/s") == 10 * 1024 * 1024
    assert parse_byte_rate(4096) == 4096
    with pytest.raises(ValueError, match="invalid rate 'fast'"):
        parse_byte_rate("fast")
    assert parse_disk("2G") == 2 * 1024**3
    with pytest.raises(ValueError, match="at least 8M"):
        parse_disk("1M")


def test_resources_reach_the_job_spec() -> None:
    text = (
        "jobs:\n  t:\n    resources:\n      disk: 2G\n"
        "      io: {read_bps: 20M, write_bps: 10M/s, write_iops: 100}\n"
        "      bandwidth: 10mbit\n    steps: [x]\n"
    )
    assert compile_text(text).job("t").resources == Resources(
        disk=2 * 1024**3,
        io_read_bps=20 * 1024**2,
        io_write_bps=10 * 1024**2,
        io_write_iops=100,
        bandwidth=10_000_000,
    )


def test_expressions_are_evaluated_then_parsed() -> None:
    text = "jobs:\n  t:\n    matrix: {d: [64M]}\n    resources: {disk: '${{ matrix.d }}'}\n    steps: [x]\n"
    assert compile_text(text).jobs[0].resources.disk == 64 * 1024**2


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("{disk: lots}", "ci.yml:3:23: 'disk' in the resources of job 't': invalid size 'lots'"),
        ("{disk: 1M}", "ci.yml:3:23: 'disk' in the resources of job 't': disk must be at least 8M"),
        ("{bandwidth: 10}", "ci.yml:3:28: 'bandwidth' in the resources of job 't': invalid bandwidth 10"),
        (
            "{io: {read_bps: fast}}",
            "ci.yml:3:32: 'read_bps' in the io limits of job 't': invalid rate 'fast'",
        ),
        (
            "{io: {rbps: 1}}",
            "ci.yml:3:22: unknown key 'rbps' in the io limits of job 't' (did you mean 'read_bps'?)",
        ),
        ("{io: {write_iops: 0}}", "ci.yml:3:34: 'write_iops' in the io limits of job 't' must be at least 1"),
    ],
)
def test_bad_values_are_positioned_errors(yaml: str, message: str) -> None:
    assert errors_of(f"jobs:\n  t:\n    resources: {yaml}\n    steps: [x]\n").startswith(message)


def test_bandwidth_needs_a_bridge_network() -> None:
    text = "jobs:\n  t:\n    network: none\n    resources: {bandwidth: 1mbit}\n    steps: [x]\n"
    assert errors_of(text).startswith(
        "ci.yml:4:28: bandwidth shapes a bridge network; this job's network is none"
    )


def test_schema_describes_the_new_limits() -> None:
    resources = generate()["$defs"]["Resources"]["properties"]
    assert {"disk", "io", "bandwidth", "pids"} <= set(resources)
    assert "4096" in resources["pids"]["description"]
    io = generate()["$defs"]["IoLimits"]
    assert set(io["properties"]) == {"read_bps", "write_bps", "read_iops", "write_iops"}
    assert io["additionalProperties"] is False


def test_every_container_of_a_job_gets_a_pids_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the host has a pids controller (the kernel tests check which it has: test_limits_io_kernel)."""
    from runner.sandbox import cgroups

    monkeypatch.setattr(cgroups, "can_limit", lambda controller: controller == "pids")
    job = compile_text("jobs:\n  t:\n    steps: [x]\n").job("t")
    assert job_limits(job).pids == DEFAULT_PIDS == 4096
    job = compile_text("jobs:\n  t:\n    resources: {pids: 50, io: {read_bps: 1M}}\n    steps: [x]\n").job(
        "t"
    )
    assert job_limits(job) == Limits(pids=50, io_read_bps=1024 * 1024)
    monkeypatch.setattr(cgroups, "can_limit", lambda controller: False)  # a v2 parent delegating none
    assert job_limits(compile_text("jobs:\n  t:\n    steps: [x]\n").job("t")).pids is None
    assert job_limits(job).pids == 50  # asked for: kept, so that the sandbox fails with the reason


def test_io_max_lines_follow_the_cgroup_v2_format() -> None:
    limits = Limits(io_read_bps=1000, io_write_iops=20)
    assert io_max_lines(limits, [(8, 0), (7, 3)]) == ["8:0 rbps=1000 wiops=20", "7:3 rbps=1000 wiops=20"]
    assert io_max_lines(Limits(), [(8, 0)]) == []
    assert not Limits(memory=1).io and limits.io


def test_v1_lines_go_one_per_file_and_device() -> None:
    limits = Limits(io_read_bps=5, io_write_bps=6)
    assert v1_lines(limits, [(8, 0)]) == [
        ("blkio.throttle.read_bps_device", "8:0 5"),
        ("blkio.throttle.write_bps_device", "8:0 6"),
    ]


def test_a_partition_is_throttled_through_its_disk(tmp_path: Path) -> None:
    """/sys/dev/block's layout: MAJ:MIN links into /sys/devices, a partition has a `partition` file."""
    disk = tmp_path / "devices" / "vda"
    (disk / "vda1").mkdir(parents=True)
    (disk / "dev").write_text("254:0\n")
    (disk / "vda1" / "dev").write_text("254:1\n")
    (disk / "vda1" / "partition").write_text("1\n")
    links = tmp_path / "dev-block"
    links.mkdir()
    (links / "254:0").symlink_to(disk)
    (links / "254:1").symlink_to(disk / "vda1")
    assert whole_disk(254, 1, links) == (254, 0)
    assert whole_disk(254, 0, links) == (254, 0)


def test_loop_configure_argument_matches_linux_loop_h() -> None:
    arg = loop_config(9, LO_FLAGS_AUTOCLEAR)
    assert len(arg) == 304  # sizeof(struct loop_config) on x86_64
    assert struct.unpack_from("=I", arg, 0)[0] == 9
    assert struct.unpack_from("=I", arg, 8 + 5 * 8 + 3 * 4)[0] == LO_FLAGS_AUTOCLEAR  # info.lo_flags
