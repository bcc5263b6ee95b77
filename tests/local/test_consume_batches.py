"""The `sql` and `sink` processings of `dataworks consume`, against a real redis-server, the S3
server the tests start (moto) and a real Kafka broker: each micro-batch through DuckDB and into
Parquet files before it is acknowledged, read back to check that every message is there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
import redis

from tests.local import services

CLI = [sys.executable, "-m", "dataworks.cli.main"]
AVERAGE = (
    "SELECT symbol, count(*) AS n, max(sequence_number) AS last, avg(price) AS price "
    "FROM batch GROUP BY symbol"
)


def produce(target: str, count: int, tmp_path: Path) -> list[dict[str, Any]]:
    """`count` messages into the broker and into a file, whose lines the test reads."""
    for out in (target, str(tmp_path / "sent.jsonl")):
        done = subprocess.run(
            [*CLI, "generate", "-q", "--seed", "9", "--count", str(count), "-o", out],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in (tmp_path / "sent.jsonl").read_text().splitlines()]


def consume(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [
        *CLI,
        "consume",
        "--group",
        "g",
        "--consumer",
        "c1",
        "--idle-exit",
        "2",
        "--block-ms",
        "200",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120, env=env)


def test_sink_with_a_query_writes_each_batch_as_parquet_before_acknowledging(
    redis_server: services.Redis, tmp_path: Path
) -> None:
    stream = f"s-{uuid.uuid4().hex[:6]}"
    sent = produce(f"{redis_server.url}?stream={stream}", 20_000, tmp_path)
    out = tmp_path / "averages"
    done = consume(
        "--redis", redis_server.url, "--stream", stream, "--processing", "sink", "--query", AVERAGE,
        "--sink-url", f"file://{out}", "--batch", "500",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["processed"] == 20_000
    files = sorted(out.glob("*.parquet"))
    assert len(files) >= 20_000 // 500  # one file per batch
    assert not list(out.glob("*.part"))  # each whole or not at all
    per = duckdb.sql(
        f"SELECT symbol, sum(n) AS n, max(last) AS last FROM read_parquet('{out}/*.parquet') GROUP BY symbol"
    ).fetchall()
    expected: dict[str, int] = {}
    for m in sent:
        expected[m["symbol"]] = expected.get(m["symbol"], 0) + 1
    assert {s: n for s, n, _ in per} == expected  # every message counted once, in some batch
    assert all(last == expected[s] for s, _, last in per)  # up to each symbol's last number
    r = redis.Redis(port=redis_server.port)
    assert r.xpending(stream, "g")["pending"] == 0


def test_sink_to_s3_takes_its_credentials_from_the_environment(
    redis_server: services.Redis, s3_endpoint: str, tmp_path: Path
) -> None:
    stream = f"s-{uuid.uuid4().hex[:6]}"
    sent = produce(f"{redis_server.url}?stream={stream}", 5000, tmp_path)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    bucket = f"ticks-{uuid.uuid4().hex[:6]}"
    done = consume(
        "--redis", redis_server.url, "--stream", stream, "--processing", "sink",
        "--sink-url", f"s3://{bucket}/raw", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    import s3fs

    fs = s3fs.S3FileSystem(key="testing", secret="testing", client_kwargs={"endpoint_url": s3_endpoint})
    files = fs.glob(f"{bucket}/raw/*.parquet")
    assert files
    ids = set()
    for path in files:
        with fs.open(path, "rb") as f:
            table = pq.read_table(f)
        assert {"message_id", "symbol", "price", "sequence_number"} <= set(table.column_names)
        ids |= set(table.column("message_id").to_pylist())
    assert ids == {m["message_id"] for m in sent}


def test_sql_without_a_sink_logs_its_rows_and_the_kafka_consumer_does_the_same(
    kafka_server: services.Kafka, tmp_path: Path
) -> None:
    topic = f"t-{uuid.uuid4().hex[:6]}"
    produce(f"kafka://{kafka_server.bootstrap}?topic={topic}&partitions=2", 3000, tmp_path)
    done = consume(
        "--kafka", kafka_server.bootstrap, "--topic", topic, "--processing", "sql",
        "--query", "SELECT count(*) AS n FROM batch",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stderr.splitlines() if line.startswith('{"n"')]
    assert sum(row["n"] for row in rows) == 3000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--processing", "sql"], "type sql needs a query"),
        (["--processing", "sink"], "type sink needs sink.url"),
        (["--processing", "sql", "--query", "DROP TABLE batch"], "query must be exactly one SELECT"),
        (["--query", "SELECT 1"], "type count only counts"),
    ],
)
def test_a_processing_without_what_it_needs_is_refused_before_reading(args: list[str], message: str) -> None:
    done = consume("--redis", "redis://127.0.0.1:1/0", "--stream", "s", *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
