"""Sequence numbers as runs, and the loss check over many consumers' reports (pure layer)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any


def runs(values: Iterable[int]) -> list[list[int]]:
    """Values as sorted [first, last] runs: [3, 1, 2, 7, 2] -> [[1, 3], [7, 7]]."""
    out: list[list[int]] = []
    for v in sorted(values):
        if out and v <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], v)
        else:
            out.append([v, v])
    return out


def check(reports: Iterable[Mapping[str, Any]], expected: Mapping[str, int]) -> dict[str, int]:
    """Over many consumers' reports (each with `processed` and `sequences`, a symbol's runs),
    against `expected` (each symbol's last sequence number): numbers no consumer processed
    (lost), numbers two consumers processed (duplicated), the total processed, and the
    distinct numbers processed."""
    counts: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    processed = 0
    for rep in reports:
        processed += int(rep["processed"])
        for symbol, symbol_runs in rep["sequences"].items():
            for first, last in symbol_runs:
                for n in range(first, last + 1):
                    counts[symbol][n] += 1
    lost = sum(1 for s, last in expected.items() for n in range(1, last + 1) if not counts[s].get(n))
    duplicated = sum(c - 1 for per in counts.values() for c in per.values() if c > 1)
    distinct = sum(len(per) for per in counts.values())
    return {"lost": lost, "duplicated": duplicated, "processed": processed, "distinct": distinct}
