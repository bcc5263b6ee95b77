"""Benchmark: every shipped stream scenario (benchmarks/scenarios/), one at a time (issue 16).

Each runs as `dataworks bench stream` would: its own Redis (or, for a Kafka scenario, the
tests' Kafka broker started here for the run), the generator in real time, its consumers, its
faults. Each writes benchmarks/results/stream-<name>.json and .html. The table gives, per
scenario, what was produced and lost, the latency percentiles, and the peak produced and
acknowledged rates beside the broker's ceiling, measured at the run's start by the broker's own
tool: redis-benchmark's XADD into the same Redis, or Kafka's producer perf tool (from the jars
`make kafka` fetched, test/kafka/bin) into the same Kafka.
One run each (the scenarios are minutes long); env BENCH_SCENARIOS picks some by name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.harness import REPO
from tests.local import services

CLI = [sys.executable, "-m", "dataworks.cli.main"]
SCENARIOS = sorted((REPO / "benchmarks" / "scenarios").glob("*.yaml"))


def main() -> None:
    wanted = set(filter(None, os.environ.get("BENCH_SCENARIOS", "").split(",")))
    chosen = [p for p in SCENARIOS if not wanted or p.stem in wanted]
    results = {}
    with tempfile.TemporaryDirectory() as d:
        kafka = None
        for path in chosen:
            extra: list[str] = []
            if "kafka:" in path.read_text():
                if kafka is None:
                    (Path(d) / "kafka").mkdir()
                    kafka = services.kafka(Path(d) / "kafka")
                    server = kafka.__enter__()
                extra = ["--kafka", server.bootstrap]
            out = REPO / "benchmarks" / "results" / f"stream-{path.stem}.json"
            done = subprocess.run(
                [*CLI, "bench", "stream", str(path), "--json", str(out), *extra],
                check=False,
                env=services.with_kafka_tools(),  # the Kafka scenarios' ceiling
            )
            if done.returncode != 0:
                print(f"{path.stem}: exit {done.returncode}", file=sys.stderr)
            results[path.stem] = json.loads(out.read_text())["summary"]
        if kafka is not None:
            kafka.__exit__(None, None, None)
    table = Table(title="shipped stream scenarios, one run each")
    for col in ("scenario", "produced", "lost", "dup", "p50 / p99 / p99.9 ms", "peak produced/s",
                "peak acked/s", "ceiling msg/s (tool)", "acked / ceiling"):  # fmt: skip
        table.add_column(col)
    for name, s in results.items():
        lat = s["latencyMs"]
        ceiling = s.get("ceiling")
        table.add_row(
            name,
            f"{s['producedMessages']:,}",
            str(s["lost"]),
            f"{s['duplicated']:,}",
            f"{lat['p50']:.1f} / {lat['p99']:.1f} / {lat['p999']:.1f}",
            f"{s['peakProduced']:,}",
            f"{s['peakAcknowledged']:,}",
            f"{ceiling:,} ({s['ceilingTool'].split()[0]})" if ceiling else "n/a",
            f"{s['peakAcknowledged'] / ceiling:.2f}" if ceiling else "",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
