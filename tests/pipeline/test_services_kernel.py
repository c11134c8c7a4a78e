"""Services: a real TCP server in its own container, a ready probe, steps reaching it by name."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pipeline_helpers import job, out, run, step

from runner.config.spec import ServiceSpec
from runner.pipeline.events import PhaseFinished

pytestmark = pytest.mark.kernel

SERVER = (
    "import socket, sys, time\n"
    "print('starting', flush=True)\n"
    "time.sleep(0.5)\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('127.0.0.1', 7070)); s.listen()\n"
    "print('listening', flush=True)\n"
    "while True:\n"
    "    c, _ = s.accept(); c.sendall(b'pong\\n'); c.close()\n"
)
PROBE = "python3 -c \"import socket; socket.create_connection(('127.0.0.1', 7070), timeout=1).close()\""
CLIENT = (
    "python3 -c \"import socket; s = socket.create_connection(('pingsvc', 7070), timeout=2); "
    'print(s.recv(10).decode().strip())"'
)


def test_service_is_ready_before_steps_and_reachable_by_name(tmp_path: Path) -> None:
    service = ServiceSpec(
        "pingsvc", image=job("x").image, command=("python3", "-u", "-c", SERVER), ready=PROBE
    )
    result, sink = run(tmp_path, job("uses-service", step(CLIENT, name="client"), services=(service,)))
    assert result.status == "passed", result.jobs["uses-service"].reason
    assert out(sink, "uses-service", "client") == ["pong"]
    service_lines = out(sink, "uses-service", stream="service:pingsvc")
    assert service_lines[:2] == ["starting", "listening"]
    assert any(
        line.startswith("service pingsvc ready after") for line in out(sink, "uses-service", stream="runner")
    )
    assert [e.phase for e in sink.of(PhaseFinished) if e.phase == "services"] == ["services"]


def test_service_filesystem_is_not_the_jobs(tmp_path: Path) -> None:
    service = ServiceSpec(
        "writer", image=job("x").image, command=("sh", "-c", "echo svc > /usr/local/from-service; sleep 60")
    )
    result, sink = run(
        tmp_path,
        job(
            "j",
            step("sleep 0.5; test ! -e /usr/local/from-service && echo separate", name="s"),
            services=(service,),
        ),
    )
    assert result.status == "passed", result.jobs["j"].reason
    assert out(sink, "j", "s") == ["separate"]


def test_never_ready_service_fails_job_with_reason_and_log_tail(tmp_path: Path) -> None:
    service = ServiceSpec(
        "deaf",
        image=job("x").image,
        command=("sh", "-c", "echo booting; echo still booting; sleep 60"),
        ready="false",
        ready_timeout=1.0,
    )
    began = time.monotonic()
    result, sink = run(tmp_path, job("j", step("echo never", name="s"), services=(service,)))
    assert time.monotonic() - began < 20
    reason = result.jobs["j"].reason
    assert result.jobs["j"].status == "failed"
    assert reason.startswith("service 'deaf' was not ready within 1s (probe: false)")
    assert "booting | still booting" in reason
    assert out(sink, "j", "s") == []


def test_service_that_exits_fails_fast(tmp_path: Path) -> None:
    service = ServiceSpec(
        "crash",
        image=job("x").image,
        command=("sh", "-c", "echo oops >&2; exit 4"),
        ready="false",
        ready_timeout=60,
    )
    began = time.monotonic()
    result, _ = run(tmp_path, job("j", "true", services=(service,)))
    assert time.monotonic() - began < 20
    assert result.jobs["j"].status == "failed"
    assert (
        "service 'crash' exited with code 4 before it was ready; last output: oops" in result.jobs["j"].reason
    )


def test_service_that_dies_while_its_probe_passes_fails_the_job(tmp_path: Path) -> None:
    service = ServiceSpec(
        "dying",
        image=job("x").image,
        command=("sh", "-c", "echo dying; exit 3"),
        ready="sleep 1; true",  # passes, but only after the service is gone
        ready_timeout=30,
    )
    result, _ = run(tmp_path, job("j", "true", services=(service,)))
    assert result.jobs["j"].status == "failed"
    assert "service 'dying' exited with code 3 before it was ready" in result.jobs["j"].reason


def test_job_timeout_bounds_waiting_for_a_service(tmp_path: Path) -> None:
    service = ServiceSpec(
        "slow", image=job("x").image, command=("sleep", "120"), ready="false", ready_timeout=120
    )
    began = time.monotonic()
    result, _ = run(tmp_path, job("j", "true", services=(service,), timeout=1.0))
    assert time.monotonic() - began < 1.0 + 10
    assert result.jobs["j"].status == "failed"
    assert result.jobs["j"].reason == "the job timed out before service 'slow' was ready"
