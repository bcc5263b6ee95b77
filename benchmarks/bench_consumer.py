"""Benchmark: one `dataworks consume` process (the `count` processing, COUNT 100) against the
Redis ceiling of the same round (issue 15).

Each round starts a fresh redis-server (no persistence), fills a stream with COUNT generated
messages, then measures:
- ceiling: redis-benchmark's pipelined XADD of a message-sized payload (what the server takes);
- consume: one consumer draining the stream with XREADGROUP COUNT 100, JSON decode, dedupe by
  message_id, XACK (pipelined with the next read). Its rate is messages over the wall time from
  start to the last message (its report's wall time minus the idle wait that ends it);
- busy: the same consumer's rate over the time it spent processing (what the scaler divides by).

Target: >= 100K messages/s for `count`. Medians over ROUNDS. Writes benchmarks/results/consumer.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.bench_generator import against_ceiling, ceiling
from benchmarks.harness import REPO
from tests.local import services

COUNT = int(os.environ.get("BENCH_COUNT", "1000000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
IDLE_EXIT = 1.0
CLI = [sys.executable, "-m", "dataworks.cli.main"]


def one_round() -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    try:
        with services.redis(base) as server:
            row = {"ceiling": ceiling(server.port, 1)}
            url = f"redis://127.0.0.1:{server.port}/0"
            subprocess.run(
                [
                    *CLI,
                    "generate",
                    "-q",
                    "--seed",
                    "1",
                    "--count",
                    str(COUNT),
                    "--rate",
                    "50000",
                    "-o",
                    f"{url}?stream=md",
                ],
                check=True,
            )
            out = subprocess.run(
                [
                    *CLI,
                    "consume",
                    "--redis",
                    url,
                    "--stream",
                    "md",
                    "--group",
                    "g",
                    "--consumer",
                    "c",
                    "--batch",
                    "100",
                    "--block-ms",
                    "100",
                    "--idle-exit",
                    str(IDLE_EXIT),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            report = json.loads(out)
            if report["processed"] != COUNT:
                raise RuntimeError(f"consumed {report['processed']} of {COUNT}")
            row["consume"] = COUNT / (report["wallSeconds"] - IDLE_EXIT)
            row["busy"] = float(report["rate"])
            return row
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    rounds, median, ratio = against_ceiling(one_round, ROUNDS)
    table = Table(title=f"one consumer, `count`, COUNT 100, {COUNT:,} messages, median of {ROUNDS} rounds")
    for col in ("run", "messages/s", "x ceiling (same round)", "target"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for m, v in median.items():
        table.add_row(m, f"{v:,.0f}", f"{ratio[m]:.2f}", ">= 100,000" if m == "consume" else "")
    Console().print(table)
    result: dict[str, Any] = {"count": COUNT, "rounds": rounds, "median": median, "ratio_to_ceiling": ratio}
    out = REPO / "benchmarks" / "results" / "consumer.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
