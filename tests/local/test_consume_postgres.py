"""The sink into PostgreSQL: `dataworks consume --processing sink --sink-url postgresql://...`
against a real redis-server and a real PostgreSQL (both started by the tests). Each
micro-batch is COPYed into the table and committed before it is acknowledged; the table is
created from the first batch, and a field that appears later becomes a column."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.local import services

CLI = [sys.executable, "-m", "dataworks.cli.main"]


def produce(target: str, count: int, tmp_path: Path) -> list[dict[str, Any]]:
    for out in (target, str(tmp_path / "sent.jsonl")):
        done = subprocess.run([*CLI, "generate", "-q", "--seed", "12", "--count", str(count), "-o", out],
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in (tmp_path / "sent.jsonl").read_text().splitlines()]


def consume(
    stream: str, server: services.Redis, pg: services.Postgres, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PGUSER": pg.user, "PGPASSWORD": pg.password}  # what secretName gives a pod
    cmd = [*CLI, "consume", "--redis", server.url, "--stream", stream, "--group", "g", "--consumer", "c1",
           "--idle-exit", "2", "--block-ms", "200", "--processing", "sink", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120, env=env)


def test_every_message_is_copied_in_and_later_fields_become_columns(
    redis_server: services.Redis, pg: services.Postgres, tmp_path: Path
) -> None:
    stream = f"md-{uuid.uuid4().hex[:6]}"
    table = f"ticks_{uuid.uuid4().hex[:6]}"
    sent = produce(f"{redis_server.url}?stream={stream}", 20_000, tmp_path)
    url = f"postgresql://127.0.0.1:{pg.port}/dataworks?table={table}"
    done = consume(stream, redis_server, pg, "--sink-url", url)
    assert done.returncode == 0, done.stderr
    assert pg.psql(f"SELECT count(*), count(DISTINCT message_id) FROM {table}") == "20000|20000"
    columns = pg.psql(
        f"SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY column_name) "
        f"FROM information_schema.columns WHERE table_name = '{table}'"
    ).split(",")
    assert {"price:double precision", "sequence_number:bigint", "symbol:text", "side:text",
            "headline:text"} <= set(columns)  # fmt: skip
    trades = sum(1 for m in sent if m["type"] == "trade")
    assert pg.psql(f"SELECT count(side) FROM {table}") == str(trades)  # null where a message had none
    last = max(m["sequence_number"] for m in sent if m["symbol"] == "SYM003")
    assert pg.psql(f"SELECT max(sequence_number) FROM {table} WHERE symbol = 'SYM003'") == str(last)


def test_a_query_chooses_the_rows_and_the_columns(
    redis_server: services.Redis, pg: services.Postgres, tmp_path: Path
) -> None:
    stream = f"md-{uuid.uuid4().hex[:6]}"
    table = f"averages_{uuid.uuid4().hex[:6]}"
    produce(f"{redis_server.url}?stream={stream}", 5_000, tmp_path)
    query = "SELECT symbol, count(*) AS n, avg(price) AS price FROM batch GROUP BY symbol"
    url = f"postgresql://127.0.0.1:{pg.port}/dataworks?table={table}"
    done = consume(stream, redis_server, pg, "--sink-url", url, "--query", query)
    assert done.returncode == 0, done.stderr
    assert pg.psql(f"SELECT sum(n) FROM {table}") == "5000"  # each message in one batch's group


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:pw@127.0.0.1/dataworks?table=t", "sink.url"),  # a credential in the URL
        ("postgresql://127.0.0.1/dataworks", "sink.url"),  # no table
    ],
)
def test_a_bad_postgres_url_is_refused_before_anything_is_read(url: str, message: str) -> None:
    cmd = [*CLI, "consume", "--redis", "redis://127.0.0.1:1/0", "--stream", "s", "--group", "g",
           "--processing", "sink", "--sink-url", url]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


def test_wrong_credentials_stop_the_consumer_with_nothing_acknowledged(
    redis_server: services.Redis, pg: services.Postgres, tmp_path: Path
) -> None:
    stream = f"md-{uuid.uuid4().hex[:6]}"
    produce(f"{redis_server.url}?stream={stream}", 1_000, tmp_path)
    env = {**os.environ, "PGUSER": pg.user, "PGPASSWORD": "wrong"}
    cmd = [*CLI, "consume", "--redis", redis_server.url, "--stream", stream, "--group", "g",
           "--idle-exit", "2", "--processing", "sink", "--sink-url",
           f"postgresql://127.0.0.1:{pg.port}/dataworks?table=never"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120, env=env)
    assert done.returncode == 3, done.stderr
    assert f"cannot write to the sink postgresql://127.0.0.1:{pg.port}/dataworks?table=never: " in done.stderr
    assert "password authentication failed" in done.stderr
    assert "Traceback" not in done.stderr
    assert redis.Redis(port=redis_server.port).xinfo_groups(stream) == []  # nothing read
