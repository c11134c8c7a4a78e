"""The job graph: finding a `needs` cycle and ordering jobs so every job comes after what it needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle as `[a, b, a]` (each needs the next), or None; nodes are tried in mapping order."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in edges.get(node, ()):
            if target not in edges:
                continue
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in edges:
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def topological_order(edges: Mapping[str, Sequence[str]]) -> list[str]:
    """Nodes ordered so that each follows its dependencies; ties keep mapping order.

    Raises ValueError on a cycle (callers check with `find_cycle` first for a better message).
    """
    remaining = {node: {t for t in targets if t in edges} for node, targets in edges.items()}
    order: list[str] = []
    done: set[str] = set()
    while remaining:
        ready = [node for node, deps in remaining.items() if deps <= done]
        if not ready:
            raise ValueError("the job graph has a cycle")
        node = ready[0]
        order.append(node)
        done.add(node)
        del remaining[node]
    return order
