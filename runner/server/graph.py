"""The jobs of a build as a graph of their `needs`, laid out for an SVG drawn on the server.

Columns are depths (a job sits one column right of the deepest job it needs), rows keep the order
of ci.yml. The jobs of one matrix (`test (py: 3.11)`, `test (py: 3.12)`, named by
`runner.config.matrix.job_name`) form one node listing each combination, so a 12-way matrix is one
box with 12 rows rather than 12 boxes and 12 times as many edges. The template turns a `Graph` into
SVG; nothing here knows HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

COLUMN_WIDTH = 210
NODE_WIDTH = 170
ROW_HEIGHT = 22
NODE_PAD = 8
GAP = 16
MARGIN = 8

# worst first: a group shows the status of its worst member
_SEVERITY = ["error", "failed", "running", "canceled", "queued", "skipped", "passed"]
_MATRIX = re.compile(r"^(?P<base>.+?) \((?P<combo>[^()]*: [^()]*)\)$")


def matrix_base(name: str) -> tuple[str, str]:
    """`("test", "py: 3.12")` for `test (py: 3.12)`; `(name, "")` for a job without a matrix."""
    found = _MATRIX.match(name)
    return (found["base"], found["combo"]) if found else (name, "")


def worst(statuses: list[str]) -> str:
    ranked = [s for s in _SEVERITY if s in statuses]
    return ranked[0] if ranked else (statuses[0] if statuses else "queued")


@dataclass
class Member:
    """One job inside a node: its full name (for links), the text shown, its status, where it is drawn."""

    name: str
    label: str
    status: str
    y: int = 0


@dataclass
class Node:
    key: str
    label: str
    status: str
    members: list[Member]
    needs: list[str] = field(default_factory=list)  # keys of other nodes
    column: int = 0
    x: int = 0
    y: int = 0
    height: int = 0

    @property
    def grouped(self) -> bool:
        return len(self.members) > 1


@dataclass
class Edge:
    path: str  # SVG path data
    status: str  # of the node it leaves


@dataclass
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    node_width: int = NODE_WIDTH


def _nodes(jobs: list[dict[str, Any]]) -> tuple[list[Node], dict[str, str]]:
    """Nodes in ci.yml order, and the node key of every job name."""
    bases: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        base, combo = matrix_base(job["name"])
        bases.setdefault(base if combo else job["name"], []).append(job)
    nodes: list[Node] = []
    key_of: dict[str, str] = {}
    seen: set[str] = set()
    for job in jobs:
        base, combo = matrix_base(job["name"])
        group = bases.get(base, []) if combo else []
        if combo and len(group) > 1 and base not in seen and base not in {j["name"] for j in jobs}:
            seen.add(base)
            members = [Member(j["name"], matrix_base(j["name"])[1], j["status"]) for j in group]
            nodes.append(Node("m:" + base, base, worst([m.status for m in members]), members))
            for member in group:
                key_of[member["name"]] = "m:" + base
        elif job["name"] not in key_of:
            key_of[job["name"]] = "j:" + job["name"]
            nodes.append(
                Node("j:" + job["name"], job["name"], job["status"], [Member(job["name"], "", job["status"])])
            )
    by_key = {node.key: node for node in nodes}
    for job in jobs:
        node = by_key[key_of[job["name"]]]
        for need in job.get("needs") or []:
            target = key_of.get(need)
            if target and target != node.key and target not in node.needs:
                node.needs.append(target)
    return nodes, key_of


def _columns(nodes: list[Node]) -> None:
    by_key = {node.key: node for node in nodes}
    depth: dict[str, int] = {}

    def visit(node: Node, path: frozenset[str]) -> int:
        if node.key in depth:
            return depth[node.key]
        if node.key in path:  # a cycle cannot come from a valid ci.yml; draw it flat rather than loop
            return 0
        parents = [by_key[k] for k in node.needs if k in by_key]
        value = 1 + max((visit(p, path | {node.key}) for p in parents), default=-1)
        depth[node.key] = value
        return value

    for node in nodes:
        node.column = visit(node, frozenset())


def layout(jobs: list[dict[str, Any]]) -> Graph:
    """The graph of `jobs` (dicts with `name`, `status`, `needs`, as the API gives them)."""
    nodes, _ = _nodes(jobs)
    _columns(nodes)
    heights: dict[int, int] = {}
    for node in nodes:
        rows = len(node.members) + (1 if node.grouped else 0)
        node.height = rows * ROW_HEIGHT + NODE_PAD
        node.x = MARGIN + node.column * COLUMN_WIDTH
        node.y = MARGIN + heights.get(node.column, 0)
        heights[node.column] = heights.get(node.column, 0) + node.height + GAP
        first = node.y + NODE_PAD // 2 + (ROW_HEIGHT if node.grouped else 0)
        for i, member in enumerate(node.members):
            member.y = first + i * ROW_HEIGHT
    by_key = {node.key: node for node in nodes}
    edges: list[Edge] = []
    for node in nodes:
        for key in node.needs:
            parent = by_key[key]
            x1, y1 = parent.x + NODE_WIDTH, parent.y + parent.height // 2
            x2, y2 = node.x, node.y + node.height // 2
            bend = max(20, (x2 - x1) // 2)
            path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
            edges.append(Edge(path, parent.status))
    width = MARGIN * 2 + (max((n.column for n in nodes), default=0)) * COLUMN_WIDTH + NODE_WIDTH
    height = MARGIN * 2 + max(heights.values(), default=GAP) - GAP
    return Graph(nodes, edges, width, max(height, ROW_HEIGHT + NODE_PAD))
