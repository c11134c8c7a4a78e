"""The job graph helpers: cycles named in order, stable topological order."""

from __future__ import annotations

import pytest

from runner.config.graph import find_cycle, topological_order


def test_no_cycle() -> None:
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None


def test_cycles_are_named_from_where_they_are_entered() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": ["a"], "a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]


def test_unknown_targets_are_ignored() -> None:
    assert find_cycle({"a": ["missing"]}) is None
    assert topological_order({"a": ["missing"], "b": ["a"]}) == ["a", "b"]


def test_topological_order_keeps_file_order_between_independent_jobs() -> None:
    edges = {"deploy": ["test"], "lint": [], "test": ["build"], "build": [], "docs": []}
    assert topological_order(edges) == ["lint", "build", "test", "deploy", "docs"]


def test_topological_order_refuses_cycles() -> None:
    with pytest.raises(ValueError, match="cycle"):
        topological_order({"a": ["b"], "b": ["a"]})
