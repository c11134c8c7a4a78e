"""Steps in real containers: the shared job filesystem, $RUNNER_ENV, `when`, timeouts, retries, secrets."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pipeline_helpers import job, out, run, step, steps

from runner.config.spec import Resources
from runner.pipeline.events import JobStarted, StepStarted

pytestmark = pytest.mark.kernel


def test_runner_env_exports_reach_later_steps(tmp_path: Path) -> None:
    result, sink = run(
        tmp_path,
        job(
            "env",
            step(
                'echo "GREETING=hello world" >> "$RUNNER_ENV"\n'
                'printf "MULTI<<EOF\\nl1\\nl2\\nEOF\\n" >> "$RUNNER_ENV"',
                name="export",
            ),
            step(
                'echo "got:$GREETING:$CI:$RUNNER:$RUNNER_JOB:$PIPE"; printf "%s\\n" "$MULTI" | wc -l',
                name="read",
            ),
            env={"PIPE": "from-job"},
        ),
    )
    assert result.status == "passed", result.jobs["env"].reason
    assert out(sink, "env", "read") == ["got:hello world:true:1:env:from-job", "2"]


def test_step_env_overrides_and_env_file_is_fresh_per_step(tmp_path: Path) -> None:
    result, sink = run(
        tmp_path,
        job(
            "env",
            step('echo A=1 >> "$RUNNER_ENV"', name="one"),
            step('test ! -s "$RUNNER_ENV"; echo "A=$A B=$B"', name="two", env={"B": "step"}),
        ),
    )
    assert result.status == "passed", result.jobs["env"].reason
    assert out(sink, "env", "two") == ["A=1 B=step"]


def test_install_in_one_step_is_visible_in_the_next_but_not_on_the_host(tmp_path: Path) -> None:
    marker = f"runner-test-{os.getpid()}-{time.monotonic_ns()}"
    result, sink = run(
        tmp_path,
        job(
            "install",
            step(
                f"mkdir -p /usr/local/lib/{marker} && echo installed > /usr/local/lib/{marker}/pkg",
                name="install",
            ),
            step(f"cat /usr/local/lib/{marker}/pkg", name="use"),
        ),
    )
    assert result.status == "passed", result.jobs["install"].reason
    assert out(sink, "install", "use") == ["installed"]
    assert not Path(f"/usr/local/lib/{marker}").exists()


def test_workspace_is_a_copy_and_parallel_jobs_do_not_see_each_other(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "README").write_text("original\n")
    result, sink = run(
        tmp_path,
        job("a", "echo from-a > README; echo a > only-a; sleep 0.3; ls"),
        job("b", "sleep 0.1; cat README; ls"),
        concurrency=2,
    )
    assert result.status == "passed"
    assert (src / "README").read_text() == "original\n"
    assert sorted(p.name for p in src.iterdir()) == ["README"]
    assert "only-a" not in out(sink, "b")
    assert out(sink, "b")[0] == "original"


def test_when_on_failure_and_always(tmp_path: Path) -> None:
    result, sink = run(
        tmp_path,
        job(
            "j",
            step("echo one", name="ok"),
            step("exit 3", name="breaks"),
            step("echo never", name="skipped-after-failure"),
            step("echo cleanup", name="on-failure", when="on_failure"),
            step("echo always", name="always", when="always"),
        ),
        job("k", step("true", name="fine"), step("echo no", name="only-on-failure", when="on_failure")),
    )
    got = steps(sink, "j")
    assert got["breaks"].status == "failed" and got["breaks"].exit_code == 3
    assert got["skipped-after-failure"].status == "skipped"
    assert got["on-failure"].status == "passed" and got["always"].status == "passed"
    assert out(sink, "j", "on-failure") == ["cleanup"]
    assert result.jobs["j"].status == "failed"
    assert result.jobs["j"].reason == "step 'breaks' exited with code 3"
    assert steps(sink, "k")["only-on-failure"].status == "skipped"
    assert result.jobs["k"].status == "passed"


def test_sh_e_stops_at_the_first_failing_command(tmp_path: Path) -> None:
    result, sink = run(tmp_path, job("j", step("echo before\nfalse\necho after", name="s")))
    assert out(sink, "j", "s") == ["before"]
    assert result.jobs["j"].steps[0].exit_code == 1


def test_step_timeout_ends_the_step_fast(tmp_path: Path) -> None:
    began = time.monotonic()
    result, sink = run(
        tmp_path,
        job("j", step("sleep 60", name="slow", timeout=0.5), step("echo hi", name="later", when="always")),
    )
    assert time.monotonic() - began < 20
    slow = steps(sink, "j")["slow"]
    assert slow.status == "failed" and slow.reason == "timeout"
    assert result.jobs["j"].reason == "step 'slow' timed out after 0.5s"
    assert out(sink, "j", "later") == ["hi"]


def test_job_timeout_bounds_the_whole_job(tmp_path: Path) -> None:
    began = time.monotonic()
    result, sink = run(
        tmp_path,
        job(
            "j",
            step("sleep 0.2", name="a"),
            step("sleep 60", name="b"),
            step("echo c", name="c"),
            timeout=1.0,
        ),
    )
    assert time.monotonic() - began < 20
    assert result.jobs["j"].status == "failed"
    assert result.jobs["j"].reason == "job timed out after 1s"
    got = steps(sink, "j")
    assert got["a"].status == "passed"
    assert got["b"].status == "failed" and got["b"].reason == "timeout"
    assert got["c"].status == "skipped"


def test_retry_gets_a_fresh_filesystem_and_attempt_number(tmp_path: Path) -> None:
    script = (
        'echo "attempt $RUNNER_ATTEMPT"\n'
        "if [ -e /usr/local/left-by-attempt-1 ]; then echo dirty; exit 9; fi\n"
        "touch /usr/local/left-by-attempt-1\n"
        'test "$RUNNER_ATTEMPT" -ge 2'
    )
    result, sink = run(tmp_path, job("flaky", step(script, name="s"), retry=2))
    assert result.jobs["flaky"].status == "passed"
    assert result.jobs["flaky"].attempts == 2
    assert out(sink, "flaky", "s") == ["attempt 1", "attempt 2"]
    assert [e.attempt for e in sink.of(JobStarted)] == [1, 2]
    assert len(sink.of(StepStarted)) == 2


def test_allow_failure_keeps_pipeline_green_and_dependants_running(tmp_path: Path) -> None:
    result, _ = run(
        tmp_path,
        job("lint", "exit 1", allow_failure=True),
        job("test", "true", needs=("lint",)),
    )
    assert result.jobs["lint"].status == "failed"
    assert result.jobs["test"].status == "passed"
    assert result.status == "passed"


def test_secrets_reach_only_jobs_that_list_them_and_are_masked(tmp_path: Path) -> None:
    token = "s3cr3t-t0ken-value"
    result, sink = run(
        tmp_path,
        job("uses", 'echo "token=$API_TOKEN"; printf %s "$API_TOKEN" | base64', secrets=("API_TOKEN",)),
        job("other", 'echo "token=${API_TOKEN:-unset}"'),
        secrets={"API_TOKEN": token},
    )
    assert result.status == "passed"
    lines = out(sink, "uses")
    assert lines[0] == "token=***"
    assert all(token not in line and "czNjcjN0" not in line for line in lines)
    assert out(sink, "other") == ["token=unset"]


def test_steps_results_carry_accounting(tmp_path: Path) -> None:
    result, _ = run(
        tmp_path, job("j", step("python3 -c 'x = bytearray(20_000_000); sum(range(10**6))'", name="s"))
    )
    s = result.jobs["j"].steps[0]
    assert s.status == "passed" and s.exit_code == 0
    assert s.duration > 0 and s.cpu_time > 0


def test_stderr_is_its_own_stream(tmp_path: Path) -> None:
    _, sink = run(tmp_path, job("j", step("echo out; echo err >&2", name="s")))
    assert out(sink, "j", "s", stream="stdout") == ["out"]
    assert out(sink, "j", "s", stream="stderr") == ["err"]


def test_a_step_cannot_make_the_host_read_a_file_through_runner_env(tmp_path: Path) -> None:
    bait = tmp_path / "host-only"
    bait.write_text("LEAK=host-secret\n")
    result, sink = run(
        tmp_path,
        job(
            "j",
            step(f'rm -f "$RUNNER_ENV"; ln -s {bait} "$RUNNER_ENV"', name="plant"),
            step('echo "leak=${LEAK:-none}"', name="check"),
        ),
    )
    assert result.status == "passed", result.jobs["j"].reason
    assert out(sink, "j", "check") == ["leak=none"]
    assert any("RUNNER_ENV was replaced" in line for line in out(sink, "j", "plant", stream="runner"))
    assert bait.read_text() == "LEAK=host-secret\n"


def test_memory_limit_ends_a_step_as_oom(tmp_path: Path) -> None:
    hog = "python3 -c 'x = bytearray(400 * 1024 * 1024); print(len(x))'"
    result, sink = run(
        tmp_path, job("j", step(hog, name="hog"), resources=Resources(memory=64 * 1024 * 1024))
    )
    assert steps(sink, "j")["hog"].reason == "oom"
    assert result.jobs["j"].reason == "step 'hog' ran out of memory"


def test_a_timed_out_attempt_is_retried_with_fresh_time(tmp_path: Path) -> None:
    began = time.monotonic()
    script = 'if [ "$RUNNER_ATTEMPT" = 1 ]; then sleep 60; fi; echo "done in $RUNNER_ATTEMPT"'
    result, sink = run(tmp_path, job("j", step(script, name="s"), timeout=1.0, retry=1))
    assert time.monotonic() - began < 20
    assert result.jobs["j"].status == "passed", result.jobs["j"].reason
    assert result.jobs["j"].attempts == 2
    assert out(sink, "j", "s") == ["done in 2"]
    assert any("attempt 1 failed (job timed out after 1s); retrying" in line for line in out(sink, "j"))


def test_nothing_of_a_job_stays_behind_after_it_ends(tmp_path: Path) -> None:
    from runner.config.spec import CacheSpec, ServiceSpec

    idle = ServiceSpec("idle", image=job("x").image, command=("sleep", "30"))
    result, _ = run(
        tmp_path,
        job(
            "ok", "echo x > /usr/local/x; echo y > y", services=(idle,), cache=(CacheSpec("k", ("/root/c",)),)
        ),
        job("bad", "exit 1", retry=1),
    )
    assert result.jobs["ok"].status == "passed" and result.jobs["bad"].status == "failed"
    home = tmp_path / "home"
    assert list((home / "tmp").iterdir()) == []  # root filesystems, workspace copies, env dirs
    assert not (home / "run").exists() or list((home / "run").iterdir()) == []  # container records
