"""Latency histograms that merge (pure layer): 1 %-wide log buckets from 10 us to 1000 s.

A consumer counts each message's end-to-end latency into a bucket; the benchmark adds the
consumers' counts and reads percentiles from the sum, which percentiles of parts cannot give.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

EDGES = np.geomspace(1e-5, 1e3, 1850)  # seconds; bucket i holds (EDGES[i-1], EDGES[i]]
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999))


def bucket(latencies_s: np.ndarray) -> np.ndarray:
    """Counts per bucket (length EDGES.size + 1; the last holds everything above 1000 s)."""
    return np.bincount(np.searchsorted(EDGES, latencies_s), minlength=EDGES.size + 1)


def sparse(counts: np.ndarray) -> dict[str, int]:
    """The non-empty buckets, for a JSON report: {"index": count}."""
    return {str(i): int(counts[i]) for i in np.flatnonzero(counts)}


def merge(parts: Iterable[Mapping[str, int]]) -> np.ndarray:
    total = np.zeros(EDGES.size + 1, dtype=np.int64)
    for part in parts:
        for i, n in part.items():
            total[int(i)] += n
    return total


def percentiles_ms(counts: np.ndarray) -> dict[str, float]:
    """p50, p95, p99 and p99.9 in ms (each a bucket's upper edge: at most 1 % high)."""
    n = int(counts.sum())
    if not n:
        return {}
    cum = np.cumsum(counts)
    upper = np.append(EDGES, EDGES[-1])
    return {name: round(float(upper[int(np.searchsorted(cum, q * n))]) * 1000, 3) for name, q in QUANTILES}
