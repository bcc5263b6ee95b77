"""Sequence numbers as runs, and the loss check over many consumers' reports (pure layer)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any


class Runs:
    """A set of sequence numbers kept as sorted [first, last] runs, built one number at a time:
    in-order numbers extend the last run in O(1), others find their place by bisection, so a
    consumer's report costs what its gaps cost, not what its count does."""

    def __init__(self) -> None:
        self.firsts: list[int] = []
        self.lasts: list[int] = []

    def add(self, v: int) -> None:
        if self.lasts and self.lasts[-1] + 1 == v:
            self.lasts[-1] = v
            return
        i = bisect.bisect_right(self.firsts, v) - 1  # the run starting at or before v
        if i >= 0 and v <= self.lasts[i]:
            return  # already in
        if i >= 0 and self.lasts[i] + 1 == v:
            self.lasts[i] = v
        else:
            i += 1
            self.firsts.insert(i, v)
            self.lasts.insert(i, v)
        if i + 1 < len(self.firsts) and self.lasts[i] + 1 >= self.firsts[i + 1]:  # touches the next
            self.lasts[i] = max(self.lasts[i], self.lasts.pop(i + 1))
            self.firsts.pop(i + 1)

    def as_list(self) -> list[list[int]]:
        return [[a, b] for a, b in zip(self.firsts, self.lasts, strict=True)]


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
