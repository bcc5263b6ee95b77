"""Benchmark: one consumer's end-to-end latency at 5K and 20K messages/s (issue 15; targets:
p99 <= 10 ms at 5K/s and <= 25 ms at 20K/s).

One redis-server (no persistence), one `dataworks consume` with the `count` processing and the
latency strategy's reads (batches of 100, 5 ms blocking), and `dataworks generate --realtime`
writing RATE messages/s for SECONDS, timestamps from the wall clock. A message's latency is the
consumer's clock when it processed it minus the message's `timestamp`: the generator, Redis,
the read and the processing, on one 2-core machine the three processes share. The figures are
the consumer's report's histogram over every message of the run (core/streams/latency.py).

Beside it, the floor: redis-py's own round trip, one XADD then one XREADGROUP of it, measured
in the same round on the same server (a consumer cannot beat what one round trip costs).

Medians over ROUNDS rounds (env BENCH_ROUNDS, default 3) of each round's percentiles. Writes
benchmarks/results/consumer_latency.json.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.table import Table

from benchmarks.harness import REPO
from tests.local import services

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
RATES = (5_000, 20_000)
TARGETS = {5_000: 10.0, 20_000: 25.0}  # p99, ms
CLI = [sys.executable, "-m", "dataworks.cli.main"]


def floor_ms(port: int, n: int = 2000) -> float:
    """The median of XADD then XREADGROUP of that entry, one round trip each."""
    r = redis.Redis(port=port)
    r.xgroup_create("floor", "g", id="$", mkstream=True)
    took = []
    for _ in range(n):
        t = time.perf_counter()
        r.xadd("floor", {"data": b"x" * 200})
        r.xreadgroup("g", "c", {"floor": ">"}, count=1)
        took.append(time.perf_counter() - t)
    r.close()
    return statistics.median(took) * 1000


def one_round(rate: int) -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    with services.redis(base) as server:
        stream = "md"
        consume = [*CLI, "consume", "--redis", server.url, "--stream", stream, "--group", "g"]
        consume += ["--consumer", "c1", "--batch", "100", "--block-ms", "5"]
        consumer = subprocess.Popen(consume, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)  # the consumer's group exists before the first message
        target = f"{server.url}?stream={stream}"
        count = int(rate * SECONDS)
        gen = [*CLI, "generate", "-q", "--realtime", "--rate", str(rate), "--count", str(count), "-o", target]
        done = subprocess.run(gen, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        time.sleep(1.0)
        consumer.send_signal(signal.SIGTERM)
        out, err = consumer.communicate(timeout=60)
        assert consumer.returncode == 0, err
        report: dict[str, Any] = json.loads(out)
        assert report["processed"] == count, report
        lat = report["latencyMs"]
        return {"p50": lat["p50"], "p99": lat["p99"], "p999": lat["p999"], "floor": floor_ms(server.port)}


def main() -> None:
    results: dict[str, Any] = {}
    for rate in RATES:
        rounds = [one_round(rate) for _ in range(ROUNDS)]
        results[str(rate)] = {
            "rounds": rounds,
            "median": {k: statistics.median(r[k] for r in rounds) for k in rounds[0]},
        }
    table = Table(
        title=f"One consumer's end-to-end latency (count, batch 100, {SECONDS:g} s, {ROUNDS} rounds)"
    )
    for col in ("messages/s", "p50 ms", "p99 ms", "p99.9 ms", "p99 per round", "floor ms", "target"):
        table.add_column(col, justify="right")
    for rate in RATES:
        m = results[str(rate)]["median"]
        per_round = ", ".join(f"{r['p99']:.1f}" for r in results[str(rate)]["rounds"])
        verdict = "met" if m["p99"] <= TARGETS[rate] else "not met"
        table.add_row(
            f"{rate:,}",
            f"{m['p50']:.2f}",
            f"{m['p99']:.2f}",
            f"{m['p999']:.2f}",
            per_round,
            f"{m['floor']:.3f}",
            f"p99 <= {TARGETS[rate]:g}: {verdict}",
        )
    Console().print(table)
    out = REPO / "benchmarks" / "results" / "consumer_latency.json"
    out.write_text(json.dumps({"seconds": SECONDS, "rounds": ROUNDS, **results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
