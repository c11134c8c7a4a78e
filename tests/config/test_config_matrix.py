"""Matrix expansion follows GitHub Actions' include/exclude rules."""

from __future__ import annotations

import pytest

from runner.config.matrix import MatrixError, expand, job_name
from runner.config.yamlsource import SourceFloat


def test_cartesian_product_in_axis_order() -> None:
    combos = expand({"py": ["3.11", "3.12"], "os": ["debian", "alpine"]})
    assert combos == [
        {"py": "3.11", "os": "debian"},
        {"py": "3.11", "os": "alpine"},
        {"py": "3.12", "os": "debian"},
        {"py": "3.12", "os": "alpine"},
    ]


def test_exclude_removes_partial_matches() -> None:
    combos = expand(
        {"py": ["3.11", "3.12"], "os": ["debian", "alpine"]}, exclude=[{"os": "alpine", "py": "3.11"}]
    )
    assert {"py": "3.11", "os": "alpine"} not in combos
    assert len(combos) == 3
    assert expand({"py": [1, 2], "os": ["a", "b"]}, exclude=[{"os": "a"}]) == [
        {"py": 1, "os": "b"},
        {"py": 2, "os": "b"},
    ]


def test_github_documentation_example() -> None:
    # https://docs.github.com/actions/using-jobs/using-a-matrix-for-your-jobs#example-expanding-configurations
    combos = expand(
        {"fruit": ["apple", "pear"], "animal": ["cat", "dog"]},
        include=[
            {"color": "green"},
            {"color": "pink", "animal": "cat"},
            {"fruit": "apple", "shape": "circle"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ],
    )
    assert combos == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]


def test_include_never_overwrites_original_values() -> None:
    combos = expand({"os": ["linux", "mac"]}, include=[{"os": "linux", "extra": "yes"}])
    assert combos == [{"os": "linux", "extra": "yes"}, {"os": "mac"}]


def test_include_only_matrix() -> None:
    assert expand({}, include=[{"py": "3.12"}, {"py": "3.13", "exp": True}]) == [
        {"py": "3.12"},
        {"py": "3.13", "exp": True},
    ]


def test_exclude_then_include_can_bring_a_combination_back() -> None:
    combos = expand({"py": ["a", "b"]}, include=[{"py": "a", "x": 1}], exclude=[{"py": "a"}])
    assert combos == [{"py": "b"}, {"py": "a", "x": 1}]


def test_values_compare_by_yaml_type() -> None:
    assert expand({"flag": [True, "true"]}, exclude=[{"flag": True}]) == [{"flag": "true"}]
    assert expand({"n": [3, 4]}, exclude=[{"n": 3.0}]) == [{"n": 4}]
    assert expand({"n": [3, "3"]}, exclude=[{"n": 3}]) == [{"n": "3"}]


def test_duplicates_collapse() -> None:
    assert expand({"py": ["3.12", "3.12"]}) == [{"py": "3.12"}]


def test_no_combinations_is_an_error() -> None:
    with pytest.raises(MatrixError, match="produces no jobs"):
        expand({"py": []})
    with pytest.raises(MatrixError, match="produces no jobs"):
        expand({"py": ["1"]}, exclude=[{"py": "1"}])
    with pytest.raises(MatrixError, match="produces no jobs"):
        expand({})


def test_exclude_of_unknown_axis_is_an_error() -> None:
    with pytest.raises(MatrixError) as caught:
        expand({"py": ["1"]}, exclude=[{"pyy": "1"}])
    assert caught.value.where == ("exclude", 0, "pyy")


def test_too_many_combinations() -> None:
    with pytest.raises(MatrixError, match="the limit is 256"):
        expand({"a": list(range(20)), "b": list(range(20))})
    with pytest.raises(MatrixError, match="the limit is 256"):
        expand({"a": list(range(100)), "b": list(range(100))})


def test_job_names() -> None:
    assert job_name("test", {}) == "test"
    assert job_name("test", {"py": "3.12"}) == "test (py: 3.12)"
    assert job_name("test", {"py": "3.12", "os": "x"}) == "test (py: 3.12, os: x)"
    assert (
        job_name("t", {"ok": True, "n": None, "v": SourceFloat(3.1, "3.10")}) == "t (ok: true, n: , v: 3.10)"
    )
