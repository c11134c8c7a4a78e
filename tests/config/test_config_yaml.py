"""Reading YAML with a position for every key and value, and refusing hostile documents."""

from __future__ import annotations

import pytest

from runner.config.errors import ConfigError
from runner.config.spec import Position
from runner.config.yamlsource import MAX_ALIAS_NODES, MAX_NODES, SourceFloat, offset_position, parse_yaml


def test_positions_of_keys_values_and_items() -> None:
    doc = parse_yaml("jobs:\n  test:\n    steps:\n      - make\n      - {run: x}\n", "ci.yml")
    pos = doc.positions
    assert pos[("jobs",)].key == Position("ci.yml", 1, 1)
    assert pos[("jobs", "test")].key == Position("ci.yml", 2, 3)
    assert pos[("jobs", "test", "steps")].value == Position("ci.yml", 4, 7)
    assert pos[("jobs", "test", "steps", 0)].value == Position("ci.yml", 4, 9)
    assert pos[("jobs", "test", "steps", 1)].key is None
    assert pos[("jobs", "test", "steps", 1, "run")].key == Position("ci.yml", 5, 10)
    assert pos[("jobs", "test", "steps", 1, "run")].value == Position("ci.yml", 5, 15)


def test_scalars_follow_yaml_1_2() -> None:
    data = parse_yaml(
        "a: on\nb: yes\nc: true\nd: ~\ne: 0x10\nf: 1_000\ng: 3.10\nh: .inf\ni: 2024-01-01\n"
        "j: '007'\nk: 010\n",
        "f",
    ).data
    assert data["a"] == "on" and data["b"] == "yes"
    assert data["c"] is True and data["d"] is None
    assert data["e"] == 16 and data["f"] == 1000
    assert isinstance(data["g"], SourceFloat) and str(data["g"]) == "3.10" and data["g"] == 3.1
    assert data["h"] == float("inf")
    assert data["i"] == "2024-01-01"
    assert data["j"] == "007"
    assert data["k"] == 10
    assert list(data) == ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]


def test_merge_keys_own_entries_win() -> None:
    data = parse_yaml(
        "base: &b {x: 1, y: 2}\nother: &o {y: 3, z: 4}\nuse:\n  <<: [*b, *o]\n  x: 9\n", "f"
    ).data
    assert data["use"] == {"x": 9, "y": 2, "z": 4}


def test_non_scalar_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"f:1:3: mapping keys must be plain strings"):
        parse_yaml("? [a, b]\n: 1\n", "f")


def test_empty_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"f:1:1: empty mapping key"):
        parse_yaml(": 1\n", "f")


def test_alias_expansion_budget() -> None:
    small = "a: &a [1, 2]\nb: [*a, *a, *a]\n"
    assert parse_yaml(small, "f").data["b"] == [[1, 2]] * 3
    wide = "a: &a [" + ", ".join(["x"] * 200) + "]\nb: [" + ", ".join(["*a"] * 60) + "]\n"
    with pytest.raises(ConfigError) as caught:
        parse_yaml(wide, "f")
    assert (
        str(caught.value) == f"f:2:4: YAML aliases expand to too many values (the limit is {MAX_ALIAS_NODES})"
    )


def test_too_many_values() -> None:
    text = "x: [" + ",".join(["1"] * (MAX_NODES + 10)) + "]\n"
    with pytest.raises(
        ConfigError, match=f"f:1:1: document has too many lines or values \\(the limit is {MAX_NODES}\\)"
    ):
        parse_yaml(text, "f")
    squeezed = "x: [" + "[1]" * (MAX_NODES // 2 + 10) + "]\n"  # few commas, many values
    with pytest.raises(ConfigError, match="too many lines or values"):
        parse_yaml(squeezed.replace("][", "], ["), "f")


def test_special_characters_are_positioned() -> None:
    with pytest.raises(ConfigError, match=r"f:2:5: YAML syntax error: special characters are not allowed"):
        parse_yaml("a: 1\nb: x\x00y\n", "f")


def test_offset_position_plain_quoted_and_block() -> None:
    lines = ["a: echo ${{ x }}", 'b: "q ${{ y }}"', "c: |", "  line one", "  two ${{ z }}"]
    assert offset_position(lines, Position("f", 1, 4), "echo ${{ x }}", 5) == Position("f", 1, 9)
    assert offset_position(lines, Position("f", 2, 4), "q ${{ y }}", 2) == Position("f", 2, 7)
    block = "line one\ntwo ${{ z }}\n"
    assert offset_position(lines, Position("f", 3, 4), block, block.index("$")) == Position("f", 5, 7)
    assert offset_position(lines, Position("f", 1, 4), "unrelated ${{ q }}", 10) == Position("f", 1, 4)


def test_reused_anchor_names_are_allowed_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    assert parse_yaml("a: &x 1\nb: &x 2\nc: *x\n", "f").data == {"a": 1, "b": 2, "c": 2}
    assert capfd.readouterr().err == ""


def test_unsupported_yaml_version() -> None:
    with pytest.raises(ConfigError, match=r"^f:1:1: YAML syntax error: version minor part"):
        parse_yaml("%YAML 1.3\n---\na: 1\n", "f")
