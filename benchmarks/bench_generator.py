"""Benchmark: `dataworks generate` against the Redis ceiling measured in the same round (issue 16).

Each round starts a fresh redis-server (no persistence) on loopback and measures:
- ceiling: redis-benchmark's XADD of a message-sized payload, pipelined 64 deep, 1 client:
  what the server takes from a C client, the physical limit a Python producer is held to;
- ceiling-4: the same with 4 clients;
- generate: the generator alone, to /dev/null (no broker), by its own clock;
- redis-1, redis-2, redis-4: `dataworks generate` into a stream with 1, 2 and 4 processes.

A `generate` rate is messages over the wall time from its first entry in the stream to its last
(an XLEN poller), so the start of the Python processes is not counted. Medians over ROUNDS.
Targets: >= 50K/s from one process and >= 150K/s with 4 (on this 2-core machine, where the
redis-server shares the cores). Writes benchmarks/results/generator.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.table import Table

from benchmarks.harness import REPO
from tests.local import services

COUNT = int(os.environ.get("BENCH_COUNT", "1000000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CLI = [sys.executable, "-m", "dataworks.cli.main", "generate", "-q", "--seed", "1", "--rate", "50000"]
PAYLOAD = "x" * 200  # about the size of a price update or a trade


def ceiling(port: int, clients: int) -> float:
    out = subprocess.run(
        [
            *("redis-benchmark", "-p", str(port), "-q", "-c", str(clients), "-n", str(COUNT), "-P", "64"),
            *("XADD", "ceiling", "*", "data", PAYLOAD),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rates = re.findall(r"([\d.]+) requests per second", out)
    if not rates:
        raise RuntimeError(f"redis-benchmark printed no rate: {out!r}")
    return float(rates[-1])


def generate_alone() -> float:
    """The generator's own figure (from its first message on, not the interpreter's start)."""
    cmd = [c for c in CLI if c != "-q"]
    out = subprocess.run(
        [*cmd, "--count", str(COUNT), "-o", "/dev/null"], capture_output=True, text=True, check=True
    )
    match = re.search(r"messages in ([\d.]+) s", out.stderr)
    if not match:
        raise RuntimeError(f"generate printed no timing: {out.stderr!r}")
    return COUNT / float(match.group(1))


def generate_into(server: services.Redis, stream: str, processes: int) -> float:
    """Messages per second between the stream's first and last entry, seen by an XLEN poller."""
    r = redis.Redis(port=server.port)
    seen: dict[str, float] = {}

    def poll() -> None:
        while True:
            n = r.xlen(stream)
            now = time.monotonic()
            if n and "first" not in seen:
                seen["first"], seen["first_n"] = now, n
            if n >= COUNT:
                seen["last"] = now
                return
            time.sleep(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    url = f"redis://127.0.0.1:{server.port}/0?stream={stream}"
    subprocess.run([*CLI, "--count", str(COUNT), "-p", str(processes), "-o", url], check=True)
    poller.join(timeout=30)
    r.delete(stream)
    return (COUNT - seen["first_n"]) / (seen["last"] - seen["first"])


def against_ceiling(
    one_round: Callable[[], dict[str, float]], n: int
) -> tuple[list[dict[str, float]], dict[str, float], dict[str, float]]:
    """Run `n` rounds, printing each; the medians, and the medians of each round's ratio to its
    own `ceiling` (the machine is shared: compare within a round)."""
    rounds = []
    for k in range(n):
        rounds.append(one_round())
        print(f"round {k + 1}/{n}: " + ", ".join(f"{m} {v:,.0f}/s" for m, v in rounds[-1].items()))
    median = {m: statistics.median(r[m] for r in rounds) for m in rounds[0]}
    ratio = {m: statistics.median(r[m] / r["ceiling"] for r in rounds) for m in rounds[0]}
    return rounds, median, ratio


def one_round() -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    try:
        with services.redis(base) as server:
            row = {"ceiling": ceiling(server.port, 1), "ceiling-4": ceiling(server.port, 4)}
            redis.Redis(port=server.port).delete("ceiling")
            row["generate"] = generate_alone()
            for n in (1, 2, 4):
                row[f"redis-{n}"] = generate_into(server, f"gen{n}", n)
            return row
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    rounds, median, ratio = against_ceiling(one_round, ROUNDS)
    targets = {"redis-1": 50_000, "redis-4": 150_000}
    table = Table(title=f"dataworks generate, {COUNT:,} messages, median of {ROUNDS} rounds (msg/s)")
    for col in ("run", "median", "x ceiling (same round)", "target"):
        table.add_column(col, justify="right" if col != "run" else "left")
    for m, v in median.items():
        target = f">= {targets[m]:,}" if m in targets else ""
        table.add_row(m, f"{v:,.0f}", f"{ratio[m]:.2f}", target)
    Console().print(table)
    result: dict[str, Any] = {
        "count": COUNT,
        "rounds": rounds,
        "median": median,
        "ratio_to_ceiling": ratio,
        "targets": targets,
        "cores": os.cpu_count(),
    }
    out = REPO / "benchmarks" / "results" / "generator.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
