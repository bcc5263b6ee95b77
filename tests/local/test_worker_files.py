"""The worker on local files: each step type, bad input, and crash safety (real processes)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from tests.local.conftest import Workspace


def orders_csv(path: Path, rows: int = 100) -> Path:
    lines = ["order_id,customer_id,total_amount"]
    lines += [f"{i},{i % 7},{(i % 11) - 2}.5" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def fetch(ws: Workspace, rows: int = 100) -> None:
    orders_csv(ws.root / "orders.csv", rows)
    ws.ok({"name": "fetch", "type": "fetch", "config": {"path": "orders.csv", "table": "raw_orders"}})


def test_fetch_csv_jsonl_parquet_and_glob(ws: Workspace) -> None:
    orders_csv(ws.root / "a.csv", 10)
    orders_csv(ws.root / "b.csv", 5)
    (ws.root / "e.jsonl").write_text('{"id": 1, "kind": "click"}\n{"id": 2, "kind": "view"}\n')
    duckdb.sql(f"COPY (SELECT range AS n FROM range(7)) TO '{ws.root / 'n.parquet'}'")
    out = ws.ok({"name": "csv", "type": "fetch", "config": {"path": "*.csv"}})
    assert "rows out 15" in out.stdout
    ws.ok({"name": "jsonl", "type": "fetch", "config": {"path": "e.jsonl"}})
    assert ws.rows("jsonl", order="id") == [(1, "click"), (2, "view")]
    ws.ok({"name": "pq", "type": "fetch", "config": {"path": str(ws.root / "n.parquet")}})
    assert [r[0] for r in ws.rows("pq", order="n")] == list(range(7))


def test_corrupt_csv_names_the_line_and_commits_nothing(ws: Workspace) -> None:
    (ws.root / "bad.csv").write_text("id,amount\n1,2.5\n2,3.5\n3,4.5,9,9\n4,1\n")
    result = ws.run({"name": "bad", "type": "fetch", "config": {"path": "bad.csv"}})
    assert result.code == 1
    assert "step 'bad'" in result.stderr
    assert "line 4 has 4 fields, the header has 2" in result.stderr
    assert not ws.committed("bad")


def test_transform_multi_statement_dml_and_last_query(ws: Workspace) -> None:
    fetch(ws)
    sql = (
        "DELETE FROM raw_orders WHERE total_amount < 0;\n"
        "SELECT count(*) AS n, min(total_amount) AS lo FROM raw_orders"
    )
    ws.ok({"name": "t", "type": "transform", "dependsOn": ["fetch"], "config": {"sql": sql}})
    ((n, lo),) = ws.rows("t")
    assert lo >= 0
    assert n == sum(1 for i in range(100) if (i % 11) - 2 >= 0)
    # a script ending in DML outputs its working tables, under their own names
    ws.ok(
        {
            "name": "clean",
            "type": "transform",
            "dependsOn": ["fetch"],
            "config": {"sql": "DELETE FROM raw_orders WHERE total_amount < 0;"},
        }
    )
    assert len(ws.rows("clean", "raw_orders")) == n


def test_transform_bad_sql_points_at_the_problem(ws: Workspace) -> None:
    fetch(ws)
    result = ws.run(
        {
            "name": "t",
            "type": "transform",
            "dependsOn": ["fetch"],
            "config": {"sql": "SELECT order_id FORM raw_orders"},
        }
    )
    assert result.code == 1
    assert "SQL error" in result.stderr
    assert "FORM" in result.stderr
    assert not ws.committed("t")


def test_fan_out_strategies_partition_the_input_exactly(ws: Workspace) -> None:
    fetch(ws, rows=1000)
    for strategy in ("hash-based", "count-based", "size-based"):
        step = {
            "name": f"f-{strategy}",
            "type": "fan-out",
            "dependsOn": ["fetch"],
            "parallelism": 4,
            "config": {
                "chunk_strategy": strategy,
                "key": "customer_id",
                "sql": "SELECT order_id FROM raw_orders",
            },
        }
        for i in range(4):
            ws.ok(step, index=i, total=4)
        ids = sorted(r[0] for r in ws.rows(step["name"]))
        assert ids == list(range(1000)), strategy
    # count-based over a multi-file input (the four parts above) splits across file boundaries exactly
    step = {
        "name": "again",
        "type": "fan-out",
        "dependsOn": ["f-hash-based"],
        "parallelism": 3,
        "config": {"chunk_strategy": "count-based", "sql": "SELECT order_id FROM chunk"},
    }
    for i in range(3):
        ws.ok(step, index=i, total=3)
    assert sorted(r[0] for r in ws.rows("again")) == list(range(1000))
    sizes = [
        json.loads(m.read_text())["tables"]["again"]["rows"]
        for m in sorted((ws.step_dir("again") / "_manifest").glob("*.json"))
    ]
    assert sizes == [333, 333, 334]


def test_fan_out_output_needs_every_worker(ws: Workspace) -> None:
    fetch(ws)
    step = {
        "name": "f",
        "type": "fan-out",
        "dependsOn": ["f0"],
        "parallelism": 2,
        "config": {"sql": "SELECT * FROM raw_orders"},
    }
    step["dependsOn"] = ["fetch"]
    ws.ok(step, index=0, total=2)
    result = ws.run({"name": "after", "type": "transform", "dependsOn": ["f"], "config": {"sql": "SELECT 1"}})
    assert result.code == 1
    assert "1 of 2 workers" in result.stderr


def test_fan_out_script_failing_in_one_worker(ws: Workspace) -> None:
    fetch(ws)
    (ws.root / "work.py").write_text(
        "import os, sys, pyarrow.parquet as pq\n"
        "i = int(os.environ['WORKER_INDEX'])\n"
        "t = pq.read_table(os.environ['DATAWORKS_INPUT'])\n"
        "print('PROGRESS: 50.0%', flush=True)\n"
        "if i == 1: sys.exit(3)\n"
        "pq.write_table(t, os.environ['DATAWORKS_OUTPUT'])\n"
    )
    step = {
        "name": "s",
        "type": "fan-out",
        "dependsOn": ["fetch"],
        "parallelism": 3,
        "config": {"script": "python work.py"},
    }
    results = [ws.run(step, index=i, total=3) for i in range(3)]
    assert [r.code for r in results] == [0, 3, 0]
    assert "worker 1" in results[1].stderr
    assert "exited with 3" in results[1].stderr
    assert "PROGRESS: 50.0%" in results[0].stdout
    assert sorted(p.name for p in (ws.step_dir("s") / "_manifest").glob("*.json")) == [
        "00000.json",
        "00002.json",
    ]


def test_quality_check_passes_through_and_fails_with_offending_rows(ws: Workspace) -> None:
    fetch(ws)
    good = {
        "name": "qc",
        "type": "quality-check",
        "dependsOn": ["fetch"],
        "config": {
            "rules": [
                {"not_null": "order_id"},
                {"unique": "order_id"},
                {"row_count": {"min": 1, "max": 100}},
                {"range": {"column": "total_amount", "min": 0}, "severity": "warn"},
            ]
        },
    }
    ws.ok(good)
    record = json.loads((ws.step_dir("qc") / "_manifest" / "00000.json").read_text())
    assert record["report"]["passed"] is True
    assert [r["passed"] for r in record["report"]["rules"]] == [True, True, True, False]
    assert len(ws.rows("qc", "raw_orders")) == 100  # the input passes through
    bad = {
        "name": "qc2",
        "type": "quality-check",
        "dependsOn": ["fetch"],
        "config": {
            "rules": [
                {"accepted_values": {"column": "customer_id", "values": [0, 1, 2]}},
                {"sql": "SELECT * FROM raw_orders WHERE order_id = 5", "name": "no-five"},
            ]
        },
    }
    result = ws.run(bad)
    assert result.code == 1
    assert "2 quality rule(s) failed" in result.stderr
    assert "no-five: 1 rows" in result.stderr
    assert '"order_id": 5' in result.stderr
    assert not ws.committed("qc2")


def test_load_file_duckdb_sqlite_all_modes(ws: Workspace) -> None:
    fetch(ws, rows=10)
    base = {"type": "load", "dependsOn": ["fetch"]}
    ws.ok(
        {**base, "name": "csv", "config": {"destination": "file", "path": "out/orders.csv", "format": "csv"}}
    )
    assert len((ws.root / "out" / "orders.csv").read_text().splitlines()) == 11
    ws.ok(
        {
            **base,
            "name": "parts",
            "config": {"destination": "file", "path": "out/by_customer/", "partition_by": ["customer_id"]},
        }
    )
    assert len(list((ws.root / "out" / "by_customer").glob("customer_id=*"))) == 7
    for kind, path in (("duckdb", "w.duckdb"), ("sqlite", "w.sqlite")):
        for mode, expected in (("overwrite", 10), ("append", 20), ("upsert", 10), ("append", 20)):
            ws.ok(
                {
                    **base,
                    "name": f"{kind}-{mode}",
                    "config": {
                        "destination": kind,
                        "path": path,
                        "table": "orders",
                        "mode": mode,
                        "key": ["order_id"],
                    },
                }
            )
            if kind == "duckdb":
                count = duckdb.connect(str(ws.root / path)).execute("SELECT count(*) FROM orders").fetchone()
            else:
                count = sqlite3.connect(ws.root / path).execute("SELECT count(*) FROM orders").fetchone()
            assert count == (expected,), (kind, mode)


def test_missing_key_column_and_unknown_connection(ws: Workspace) -> None:
    fetch(ws, rows=5)
    result = ws.run(
        {
            "name": "l",
            "type": "load",
            "dependsOn": ["fetch"],
            "config": {"destination": "duckdb", "path": "w.duckdb", "mode": "upsert", "key": "id"},
        }
    )
    assert result.code == 1
    assert (
        "key column 'id' is not in the input (columns: order_id, customer_id, total_amount)" in result.stderr
    )
    result = ws.run({"name": "f", "type": "fetch", "config": {"source": "campaigns_db", "query": "SELECT 1"}})
    assert result.code == 1
    assert "step 'f': unknown connection 'campaigns_db'" in result.stderr
    assert "DATAWORKS_CONN_CAMPAIGNS_DB" in result.stderr
    bad = ws.run({"name": "b", "type": "load", "config": {"destination": "bigquery"}})
    assert bad.code == 2
    assert "supported destinations: postgres, file, duckdb, sqlite" in bad.stderr


def _slow_transform(ws: Workspace) -> subprocess.Popen[str]:
    """A transform that writes a big output, started as a real worker process."""
    path = ws.root / "steps" / "big.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    sql = "SELECT range AS id, md5(range::VARCHAR) AS h FROM range(60000000)"
    path.write_text(json.dumps({"name": "big", "type": "transform", "config": {"sql": sql}}))
    return subprocess.Popen(
        [sys.executable, "-m", "dataworks.worker", "--step-file", str(path)],
        env={**os.environ, **ws.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_partial_write(ws: Workspace, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.stat().st_size > 0 for p in ws.step_dir("big").rglob("*.parquet*")):
            return
        time.sleep(0.05)
    raise AssertionError("the worker never started writing")


def test_sigkill_mid_write_commits_nothing_and_a_retry_succeeds(ws: Workspace) -> None:
    proc = _slow_transform(ws)
    _wait_for_partial_write(ws)
    proc.kill()
    proc.communicate()
    assert not ws.committed("big")
    small = {"name": "big", "type": "transform", "config": {"sql": "SELECT range AS id FROM range(10)"}}
    ws.ok(small)
    assert len(ws.rows("big")) == 10


def test_sigterm_stops_promptly_and_cleans_up(ws: Workspace) -> None:
    proc = _slow_transform(ws)
    _wait_for_partial_write(ws)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - started
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM, nothing committed" in err
    assert took < 10
    assert not ws.committed("big")
    assert not list(ws.step_dir("big").rglob("*.parquet*"))  # the scratch files are gone too
