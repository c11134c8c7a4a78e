"""`security:` in ci.yml: seccomp and user namespaces, relaxed only by an explicit setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.config import ConfigError, EvalContext, compile_pipeline, load
from runner.config.schema import generate
from runner.config.spec import PipelineSpec, Security


def compile_text(text: str) -> PipelineSpec:
    return compile_pipeline(load(Path("ci.yml"), text=text), EvalContext())


def test_default_is_confined() -> None:
    job = compile_text("jobs:\n  t:\n    steps: [x]\n").job("t")
    assert job.security == Security(seccomp="default", userns=True)


def test_explicit_relaxation_reaches_the_job_spec() -> None:
    text = "jobs:\n  t:\n    security: {seccomp: unconfined, userns: false}\n    steps: [x]\n"
    assert compile_text(text).job("t").security == Security(seccomp="unconfined", userns=False)


def test_unknown_seccomp_mode_is_a_positioned_error() -> None:
    text = "jobs:\n  t:\n    security:\n      seccomp: off\n    steps: [x]\n"
    with pytest.raises(ConfigError) as caught:
        load(Path("ci.yml"), text=text)
    assert str(caught.value) == (
        "ci.yml:4:16: 'seccomp' in the security settings of job 't' must be one of default, unconfined,"
        " not the string 'off'"
    )


def test_unknown_security_key_is_refused() -> None:
    text = "jobs:\n  t:\n    security: {privileged: true}\n    steps: [x]\n"
    with pytest.raises(ConfigError, match=r"ci.yml:3:16: unknown key 'privileged' in the security settings"):
        load(Path("ci.yml"), text=text)


def test_userns_must_be_a_boolean() -> None:
    text = "jobs:\n  t:\n    security: {userns: maybe}\n    steps: [x]\n"
    with pytest.raises(ConfigError, match=r"ci.yml:3:"):
        load(Path("ci.yml"), text=text)


def test_schema_describes_security() -> None:
    schema = generate()
    security = schema["$defs"]["Security"]["properties"]
    assert security["seccomp"]["enum"] == ["default", "unconfined"]
    assert security["userns"]["type"] == "boolean"
