"""Benchmark: one `dataworks consume --kafka` process, by processing type, against a bare
confluent-kafka consumer of the same round (issue 15).

One Apache Kafka broker (the tests' KRaft broker, from `make kafka`) for the whole run. Each
round fills a fresh 4-partition topic with COUNT generated messages, keyed by symbol, then
measures, each as its own group reading the whole topic:
- ceiling: a bare confluent-kafka consumer (the KIP-848 protocol, consume() batches of 100,
  no decode, no commit): what the client library delivers on this machine, the rate a user
  writing their own loop would start from;
- count: `dataworks consume --kafka --batch 100` (JSON decode, dedupe by message_id, sequence
  tracking, a synchronous commit every second);
- sql: the same, plus `SELECT symbol, count(*), avg(price) FROM batch GROUP BY symbol` over
  each batch, rows to the log;
- sink: the same, plus each batch written as a Parquet file (file://) before its commit.
A consumer's rate is messages over its wall time up to the last message (its report's wall
time minus the idle wait that ends it). Medians over ROUNDS; each round's ratio to its own
ceiling. Writes benchmarks/results/consumer_kafka.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.bench_generator import against_ceiling
from benchmarks.harness import REPO
from tests.local import services

COUNT = int(os.environ.get("BENCH_COUNT", "300000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
IDLE_EXIT = 1.0
CLI = [sys.executable, "-m", "dataworks.cli.main"]
QUERY = "SELECT symbol, count(*) AS n, avg(price) AS price FROM batch GROUP BY symbol"


def bare(bootstrap: str, topic: str) -> float:
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": uuid.uuid4().hex,
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    got, first = 0, None
    while got < COUNT:
        batch = c.consume(100, timeout=1.0)
        if batch and first is None:
            first = time.perf_counter()
        got += sum(1 for m in batch if m.error() is None)
    elapsed = time.perf_counter() - (first or time.perf_counter())
    c.close()
    return COUNT / elapsed


def consume(bootstrap: str, topic: str, processing: str, sink: Path) -> float:
    extra = {"count": [], "sql": ["--query", QUERY], "sink": ["--sink-url", f"file://{sink}"]}[processing]
    cmd = [*CLI, "consume", "--kafka", bootstrap, "--topic", topic, "--group", f"g-{processing}"]
    cmd += ["--consumer", "c", "--batch", "100", "--block-ms", "100", "--idle-exit", str(IDLE_EXIT)]
    cmd += ["--processing", processing, *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    if report["processed"] != COUNT:
        raise RuntimeError(f"{processing}: consumed {report['processed']} of {COUNT}")
    return COUNT / (float(report["wallSeconds"]) - IDLE_EXIT)


def rounds_on(kafka: services.Kafka) -> Any:
    def one_round() -> dict[str, float]:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        target = f"kafka://{kafka.bootstrap}?topic={topic}&partitions=4"
        gen = [*CLI, "generate", "-q", "--seed", "1", "--count", str(COUNT), "--rate", "50000", "-o", target]
        subprocess.run(gen, check=True)
        sink = Path(tempfile.mkdtemp(prefix="bench-sink-"))
        try:
            row = {"ceiling": bare(kafka.bootstrap, topic)}
            for processing in ("count", "sql", "sink"):
                row[processing] = consume(kafka.bootstrap, topic, processing, sink)
            return row
        finally:
            shutil.rmtree(sink, ignore_errors=True)

    return one_round


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
    try:
        with services.kafka(base) as kafka:
            rounds, median, ratio = against_ceiling(rounds_on(kafka), ROUNDS)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    title = (
        f"one Kafka consumer, batches of 100, {COUNT:,} messages (4 partitions), median of {ROUNDS} rounds"
    )
    table = Table(title=title)
    for col in ("run", "messages/s", "x bare consumer (same round)"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for m, v in median.items():
        table.add_row("bare confluent-kafka" if m == "ceiling" else m, f"{v:,.0f}", f"{ratio[m]:.2f}")
    Console().print(table)
    result: dict[str, Any] = {"count": COUNT, "rounds": rounds, "median": median, "ratio_to_ceiling": ratio}
    out = REPO / "benchmarks" / "results" / "consumer_kafka.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
