"""DAG algorithms over step names (pure layer): cycles, order, dependents."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def find_cycle(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle as a closed path (a -> b -> a), or None. Unknown names are ignored."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(deps, white)
    parent: dict[str, str] = {}
    for root in deps:
        if color[root] != white:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        color[root] = grey
        while stack:
            node, i = stack[-1]
            children = [d for d in deps[node] if d in deps]
            if i < len(children):
                stack[-1] = (node, i + 1)
                child = children[i]
                if color[child] == grey:
                    path = [child]
                    cur = node
                    while cur != child:
                        path.append(cur)
                        cur = parent[cur]
                    path.append(child)
                    return list(reversed(path))
                if color[child] == white:
                    color[child] = grey
                    parent[child] = node
                    stack.append((child, 0))
            else:
                color[node] = black
                stack.pop()
    return None


def topological_order(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Steps in an order where every step follows its dependencies (stable by input order)."""
    remaining = {n: {d for d in ds if d in deps} for n, ds in deps.items()}
    order: list[str] = []
    while remaining:
        ready = [n for n, ds in remaining.items() if not ds]
        if not ready:
            raise ValueError("the graph has a cycle")
        for n in ready:
            order.append(n)
            del remaining[n]
        for ds in remaining.values():
            ds.difference_update(ready)
    return order


def dependents(deps: Mapping[str, Sequence[str]], roots: Iterable[str]) -> set[str]:
    """Every step that depends, directly or transitively, on one of roots."""
    children: dict[str, list[str]] = {n: [] for n in deps}
    for n, ds in deps.items():
        for d in ds:
            if d in children:
                children[d].append(n)
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in seen:
                seen.add(c)
                todo.append(c)
    return seen
