"""Compiling a loaded ci.yml into the backend-neutral PipelineSpec."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.config import ConfigError, EvalContext, compile_pipeline, load
from runner.config.spec import BuildInstruction, ImageSpec, PipelineSpec, Position

DATA = Path(__file__).parent / "data" / "valid"


def compile_text(text: str, context: EvalContext | None = None) -> PipelineSpec:
    return compile_pipeline(load(Path("ci.yml"), text=text), context or EvalContext())


def compile_error(text: str, context: EvalContext | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        compile_text(text, context)
    return str(caught.value).splitlines()


def test_contract_example_compiles() -> None:
    path = DATA / "contract.yml"
    pipeline = compile_pipeline(load(path), EvalContext(git={"branch": "main", "event": "push"}))
    assert [job.name for job in pipeline.jobs] == ["deps", "test (py: 3.11)", "test (py: 3.12)"]
    assert pipeline.file == str(path)
    assert pipeline.triggers.branches == ("main", "release/*")
    assert pipeline.triggers.tags == ("v*",)

    deps = pipeline.job("deps")
    assert deps.image == ImageSpec(
        ref="host",
        build=(
            BuildInstruction("copy", ("requirements.txt", "/src/requirements.txt")),
            BuildInstruction("run", ("pip install -r /src/requirements.txt",)),
            BuildInstruction("env", ("APP_MODE=test",)),
            BuildInstruction("workdir", ("/workspace",)),
        ),
    )
    assert deps.steps[0].name == 'python -c "import sys; print(sys.version)"'
    assert deps.network == "bridge"  # the contract's default: outbound only
    assert deps.position == Position(str(path), 6, 3)

    test = pipeline.job("test (py: 3.12)")
    assert test.base_name == "test"
    assert test.matrix == {"py": "3.12"}
    assert test.needs == ("deps",)
    assert test.env == {"PYTHONUNBUFFERED": "1", "TARGET": "3.12"}
    assert test.services[0].name == "cache"
    assert test.services[0].command == ("redis-server", "--port", "6380")
    assert test.services[0].ready == "redis-cli -p 6380 ping"
    assert test.services[0].ready_timeout == 30.0
    assert test.resources.memory == 1024**3
    assert test.resources.cpus == 2
    assert test.resources.pids == 512
    assert test.network == "bridge"
    assert test.timeout == 1200
    assert test.retry == 1
    assert test.allow_failure is False
    assert test.condition is True
    assert test.cache[0].key == "pip-"  # no workspace: hash_files() is empty, like no match
    assert test.cache[0].paths == ("/root/.cache/pip",)
    assert test.secrets == ("PYPI_TOKEN",)
    assert test.artifacts == ("dist/*.whl", "reports/")
    assert test.reports_junit == ("reports/*.xml",)
    assert [(s.name, s.when, s.timeout) for s in test.steps] == [
        ("unit tests", "on_success", 600),
        ("always runs", "always", None),
    ]
    assert test.steps[0].position == Position(str(path), 34, 9)


def test_condition_follows_git_context() -> None:
    path = DATA / "contract.yml"
    doc = load(path)
    on_branch = compile_pipeline(doc, EvalContext(git={"branch": "feature", "event": "push"}))
    assert on_branch.job("test (py: 3.11)").condition is False
    local = compile_pipeline(doc, EvalContext(git={"branch": "feature", "event": "exec"}))
    assert local.job("test (py: 3.11)").condition is True


def test_hash_files_uses_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("pytest\n")
    doc = load(DATA / "contract.yml")
    pipeline = compile_pipeline(doc, EvalContext(git={"event": "exec"}, workspace=tmp_path))
    key = pipeline.job("test (py: 3.11)").cache[0].key
    assert key.startswith("pip-") and len(key) == 4 + 64
    (tmp_path / "requirements.txt").write_text("pytest\nhypothesis\n")
    again = compile_pipeline(doc, EvalContext(git={"event": "exec"}, workspace=tmp_path))
    assert again.job("test (py: 3.11)").cache[0].key != key


def test_env_layers_and_extra_env_wins() -> None:
    text = """
env: {A: pipeline, B: pipeline, N: 3.10, T: true, E: ~}
jobs:
  t:
    env: {B: job, C: "${{ env.A }}-${{ env.X }}"}
    steps:
      - run: echo ${{ env.B }} ${{ env.S }}
        env: {S: step}
"""
    job = compile_text(text, EvalContext(extra_env={"X": "cli", "A": "cli"})).job("t")
    assert job.env == {"A": "cli", "B": "job", "N": "3.10", "T": "true", "E": "", "C": "cli-cli", "X": "cli"}
    assert job.steps[0].run == "echo job step"
    assert job.steps[0].env == {"S": "step"}


def test_defaults() -> None:
    job = compile_text("jobs:\n  t:\n    steps: [make]\n").job("t")
    assert job.image == ImageSpec()
    assert job.network == "bridge"
    assert job.timeout is None
    assert job.retry == 0
    assert job.condition is True
    assert job.needs == ()
    assert job.steps[0].name == "make"
    assert job.steps[0].when == "on_success"
    assert job.env == {}


def test_pipeline_image_is_the_default() -> None:
    pipeline = compile_text("image: alpine:3.20\njobs:\n  a: {steps: [x]}\n  b: {image: host, steps: [x]}\n")
    assert pipeline.job("a").image.ref == "alpine:3.20"
    assert pipeline.job("b").image.is_host


def test_step_names_from_first_line_truncated() -> None:
    long = "x" * 80
    text = f"jobs:\n  t:\n    steps:\n      - |\n\n        echo one\n        echo two\n      - {long}\n"
    steps = compile_text(text).job("t").steps
    assert steps[0].name == "echo one"
    assert steps[0].run == "\necho one\necho two\n"
    assert steps[1].name == "x" * 57 + "..."


def test_matrix_needs_expand_and_order_is_topological() -> None:
    text = """
jobs:
  deploy:
    needs: [test]
    steps: [deploy]
  test:
    needs: build
    matrix: {py: ["3.11", "3.12"], os: [debian]}
    steps: ["tox -e py${{ matrix.py }}"]
  build:
    steps: [make]
"""
    pipeline = compile_text(text)
    assert [j.name for j in pipeline.jobs] == [
        "build",
        "test (py: 3.11, os: debian)",
        "test (py: 3.12, os: debian)",
        "deploy",
    ]
    assert pipeline.job("deploy").needs == ("test (py: 3.11, os: debian)", "test (py: 3.12, os: debian)")
    assert pipeline.job("test (py: 3.12, os: debian)").steps[0].run == "tox -e py3.12"


def test_matrix_float_keeps_its_text() -> None:
    pipeline = compile_text(
        "jobs:\n  t:\n    matrix: {py: [3.10, 3.9]}\n    steps: ['echo ${{ matrix.py }}']\n"
    )
    assert [j.name for j in pipeline.jobs] == ["t (py: 3.10)", "t (py: 3.9)"]
    assert pipeline.jobs[0].steps[0].run == "echo 3.10"
    assert pipeline.jobs[0].matrix == {"py": "3.10"}


def test_image_from_another_job_is_needed() -> None:
    text = "jobs:\n  app:\n    image: {from: base, build: [{run: make}]}\n    steps: [x]\n"
    text += "  base:\n    steps: [x]\n"
    pipeline = compile_text(text)
    assert [j.name for j in pipeline.jobs] == ["base", "app"]
    assert pipeline.job("app").needs == ("base",)
    assert pipeline.job("app").image.ref == "base"
    assert pipeline.job("app").image.base == pipeline.job("base").image  # built first, then app's steps


def test_image_from_a_job_that_builds_chains_the_builds() -> None:
    text = "jobs:\n  top:\n    image: {from: mid}\n    steps: [x]\n"
    text += "  mid:\n    image: {from: low, build: [{run: b}]}\n    steps: [x]\n"
    text += "  low:\n    image: {from: host, build: [{run: a}]}\n    steps: [x]\n"
    pipeline = compile_text(text)
    top = pipeline.job("top").image
    assert top.base is not None and top.base.build[0].args == ("b",)
    assert top.base.base is not None and top.base.base.build[0].args == ("a",)
    assert top.base.base.base is None and not top.is_host


def test_image_build_details() -> None:
    text = """
jobs:
  t:
    image:
      from: debian:12
      build:
        - {copy: src/, to: /app/}
        - env: {A: "1", B: x}
    services:
      db: {command: "postgres -c 'fsync=off'", ready_timeout: 1m, env: {P: "${{ job.name }}"}}
    steps: [x]
"""
    job = compile_text(text).job("t")
    assert job.image.build == (
        BuildInstruction("copy", ("src/", "/app/")),
        BuildInstruction("env", ("A=1", "B=x")),
    )
    service = job.services[0]
    assert service.image == job.image  # a service without image runs the job's image
    assert service.command == ("postgres", "-c", "fsync=off")
    assert service.ready_timeout == 60
    assert service.env == {"P": "t"}


def test_dockerfile_image() -> None:
    job = compile_text(
        "jobs:\n  t:\n    image: {dockerfile: ci/Dockerfile, context: ci}\n    steps: [x]\n"
    ).job("t")
    assert job.image == ImageSpec(ref="host", dockerfile="ci/Dockerfile", context="ci")


def test_if_forms() -> None:
    text = """
jobs:
  a: {if: false, steps: [x]}
  b: {if: "git.branch == 'main'", steps: [x]}
  c: {if: "${{ git.tag != '' }}", steps: [x]}
  d: {if: "${{ matrix.n > 1 }}", matrix: {n: [1, 2]}, steps: [x]}
"""
    pipeline = compile_text(text, EvalContext(git={"branch": "main"}))
    assert [j.condition for j in pipeline.jobs] == [False, True, False, False, True]


@pytest.mark.parametrize(
    ("on", "branches", "tags"),
    [
        ("", ("*",), ()),
        ("on: {push: }\n", ("*",), ()),
        ("on: {push: {branches: main}}\n", ("main",), ()),
        ("on: {push: {tags: ['v*']}}\n", (), ("v*",)),
        ("on: {push: {branches: [a, b], tags: [v1]}}\n", ("a", "b"), ("v1",)),
    ],
)
def test_triggers(on: str, branches: tuple[str, ...], tags: tuple[str, ...]) -> None:
    triggers = compile_text(on + "jobs:\n  t: {steps: [x]}\n").triggers
    assert (triggers.branches, triggers.tags) == (branches, tags)


def test_expression_errors_are_positioned_at_compile_time() -> None:
    text = "jobs:\n  t:\n    matrix: {py: ['3.12']}\n    steps:\n      - run: echo ${{ matrix.pyy }}\n"
    assert compile_error(text) == [
        "ci.yml:5:19: in expression ${{ matrix.pyy }}: 'matrix' has no 'pyy' (known: py)"
        " (in job 't (py: 3.12)')"
    ]


def test_sandbox_escape_is_a_positioned_error_at_compile_time() -> None:
    text = 'env: {X: "${{ git.sha.upper.__globals__ }}"}\njobs:\n  t: {steps: [x]}\n'
    with pytest.raises(ConfigError, match=r"ci.yml:1:\d+: expression .* is not allowed"):
        load(Path("ci.yml"), text=text)
    with pytest.raises(ConfigError, match=r"ci.yml:1:\d+: unknown filter 'attr'"):
        load(Path("ci.yml"), text="env: {X: \"${{ git | attr('__class__') }}\"}\njobs:\n  t: {steps: [x]}\n")
    text = "jobs:\n  t:\n    steps: [\"${{ git['__cl' ~ 'ass__'] }}\"]\n"
    assert compile_error(text) == [
        "ci.yml:3:14: expression ${{ git['__cl' ~ 'ass__'] }} is not allowed: "
        "access to attribute '__class__' of 'Namespace' object is unsafe."
    ]


def test_evaluated_values_are_checked_again() -> None:
    text = "jobs:\n  t:\n    matrix: {t: [soon]}\n    timeout: ${{ matrix.t }}\n    steps: [x]\n"
    assert compile_error(text) == [
        "ci.yml:4:14: invalid duration 'soon'; use a number of seconds or e.g. 30s, 20m, 1h30m"
        " (in job 't (t: soon)')"
    ]
    text = "jobs:\n  t:\n    artifacts: ['${{ git.repo }}/x']\n    steps: [x]\n"
    assert compile_error(text, EvalContext(git={"repo": ".."})) == [
        "ci.yml:3:17: '../x' must be relative to the workspace and stay inside it"
    ]


def test_anchors_and_merge_keys() -> None:
    pipeline = compile_pipeline(load(DATA / "anchors.yml"))
    lint, test = pipeline.job("lint"), pipeline.job("test")
    assert lint.timeout == test.timeout == 300
    assert lint.env == {"MODE": "ci"}
    assert test.env == {"MODE": "test"}
    assert test.needs == ("lint",)
    assert [s.name for s in test.steps] == ["pytest -q", "echo first line"]


def test_minimal_file() -> None:
    pipeline = compile_pipeline(load(DATA / "minimal.yml"))
    assert [(j.name, j.steps[0].run) for j in pipeline.jobs] == [("hello", "echo hello")]


def test_a_failed_expression_is_reported_once() -> None:
    text = "jobs:\n  t:\n    timeout: ${{ nope.x }}\n    steps: [x]\n"
    with pytest.raises(ConfigError) as caught:
        load(Path("ci.yml"), text=text)
    assert str(caught.value) == "ci.yml:3:14: unknown name 'nope' in expression ${{ nope.x }}"
    text = "jobs:\n  t:\n    timeout: ${{ env.T }}\n    steps: [x]\n"
    assert compile_error(text) == ["ci.yml:3:14: in expression ${{ env.T }}: 'env' has no 'T' (known: none)"]
    assert compile_text(text, EvalContext(extra_env={"T": "1m"})).job("t").timeout == 60


def test_copy_source_evaluated_outside_the_context() -> None:
    text = "jobs:\n  t:\n    image: {build: [{copy: '${{ git.repo }}/x'}]}\n    steps: [x]\n"
    assert compile_error(text, EvalContext(git={"repo": ".."})) == [
        "ci.yml:3:28: '../x' must be relative to the build context and stay inside it"
    ]


def test_a_key_only_include_adds_is_empty_in_the_other_combinations() -> None:
    text = (
        "jobs:\n  t:\n    matrix:\n      py: ['3.11', '3.12']\n"
        "      include: [{py: '3.12', extra: '-X dev'}]\n"
        "    steps: ['run ${{ matrix.py }} [${{ matrix.extra }}]']\n"
    )
    runs = [job.steps[0].run for job in compile_text(text).jobs]
    assert runs == ["run 3.11 []", "run 3.12 [-X dev]"]
    with pytest.raises(ConfigError, match="'matrix' has no 'typo'"):
        compile_text(text.replace("matrix.extra", "matrix.typo"))
