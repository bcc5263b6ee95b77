"""Worker and local-executor benchmarks: ratios against the raw tools, in the same run.

- transform: `dataworks-worker` (whole process) vs the `duckdb` CLI running the same
  SQL on the same Parquet, writing the same Parquet output (target <= 1.2x);
- PostgreSQL load: the worker's load (append) vs `psql \\copy` of the same rows
  from a CSV (target <= 1.5x), against a server started here;
- fan-out: 2 workers in parallel vs 1 worker over the same input, one DuckDB
  thread per worker, as pods with `cpu: 1` would be (target >= 1.6x on 2 cores);
- local executor: a chain of empty container steps (`true`), wall time per step
  (target <= 300 ms), and the 100-step chain's total.

Medians over repeated, interleaved runs; results in benchmarks/results/worker.json.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import yaml
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ROWS = int(os.environ.get("BENCH_ROWS", "10000000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
SQL = "SELECT k % 1000 AS bucket, count(*) AS n, sum(v) AS total, avg(length(s)) AS len FROM data GROUP BY 1"


def measured(
    argv: list[str], env: dict[str, str] | None = None, stdin: str | None = None
) -> tuple[float, int]:
    """Wall seconds and the peak RSS (MiB) of one child process, from wait4's rusage."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.PIPE if stdin is not None else None,
    )
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin.encode())
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - started
    if status != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"{argv[0]} failed ({status}): {err}")
    if proc.stderr:
        proc.stderr.close()
    proc.returncode = 0
    return took, usage.ru_maxrss // 1024


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    return measured(argv, env)[0]


def worker_env(root: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATAWORKS_STORE": f"file://{root / 'store'}",
        "DATAWORKS_NAMESPACE": "b",
        "DATAWORKS_PIPELINE": "p",
        "DATAWORKS_RUN": "r",
        **extra,
    }


def step_file(root: Path, step: dict[str, Any]) -> str:
    path = root / f"{step['name']}.json"
    path.write_text(json.dumps({"dependsOn": [], **step}))
    return str(path)


def prepare(root: Path) -> Path:
    """ROWS rows committed as the output of step `data`, through the worker itself."""
    sql = f"SELECT range AS k, random() AS v, md5(range::VARCHAR) AS s FROM range({ROWS})"
    subprocess.run(
        [
            str(BIN / "dataworks-worker"),
            "--step-file",
            step_file(root, {"name": "data", "type": "transform", "config": {"sql": sql}}),
        ],
        env=worker_env(root),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return next((root / "store" / "b" / "p" / "r" / "data").rglob("*.parquet"))


def bench_transform(root: Path, parquet: Path) -> dict[str, Any]:
    step = step_file(
        root, {"name": "agg", "type": "transform", "dependsOn": ["data"], "config": {"sql": SQL}}
    )
    cli_sql = (
        f"CREATE VIEW data AS SELECT * FROM read_parquet('{parquet}'); "
        f"COPY ({SQL}) TO '{root / 'cli.parquet'}' (FORMAT parquet, COMPRESSION zstd);"
    )
    ours, raw = [], []
    for _ in range(REPEAT):
        ours.append(timed([str(BIN / "dataworks-worker"), "--step-file", step], env=worker_env(root)))
        raw.append(timed([str(BIN / "duckdb"), "-c", cli_sql]))
    return {
        "dataworks_s": statistics.median(ours),
        "duckdb_cli_s": statistics.median(raw),
        "ratio": statistics.median(ours) / statistics.median(raw),
        "target": 1.2,
    }


def bench_fan_out(root: Path) -> dict[str, Any]:
    sql = "SELECT k % 100 AS b, count(DISTINCT md5(s || k::VARCHAR)) AS n FROM chunk GROUP BY 1"
    one = step_file(
        root,
        {"name": "f1", "type": "fan-out", "dependsOn": ["data"], "parallelism": 1, "config": {"sql": sql}},
    )
    two = step_file(
        root,
        {"name": "f2", "type": "fan-out", "dependsOn": ["data"], "parallelism": 2, "config": {"sql": sql}},
    )
    singles, pairs = [], []
    for _ in range(REPEAT):
        singles.append(
            timed(
                [str(BIN / "dataworks-worker"), "--step-file", one],
                env=worker_env(root, DATAWORKS_THREADS="1", TOTAL_WORKERS="1"),
            )
        )
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [str(BIN / "dataworks-worker"), "--step-file", two],
                stdout=subprocess.DEVNULL,
                env=worker_env(root, DATAWORKS_THREADS="1", WORKER_INDEX=str(i), TOTAL_WORKERS="2"),
            )
            for i in range(2)
        ]
        assert all(p.wait() == 0 for p in procs)
        pairs.append(time.perf_counter() - started)
    return {
        "one_worker_s": statistics.median(singles),
        "two_workers_s": statistics.median(pairs),
        "speedup": statistics.median(singles) / statistics.median(pairs),
        "target": 1.6,
    }


def bench_pg_load(root: Path) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from tests.local import services

    rows = min(ROWS, 1_000_000)
    with services.postgres() as pg:
        step = step_file(
            root,
            {
                "name": "rows",
                "type": "transform",
                "config": {
                    "sql": "SELECT range::INT AS id, md5(range::VARCHAR) AS h, random() AS v "
                    f"FROM range({rows})"
                },
            },
        )
        subprocess.run(
            [str(BIN / "dataworks-worker"), "--step-file", step],
            env=worker_env(root),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        src = next((root / "store" / "b" / "p" / "r" / "rows").rglob("*.parquet"))
        csv = root / "rows.csv"
        duckdb.sql(f"COPY (SELECT * FROM read_parquet('{src}')) TO '{csv}' (FORMAT csv, HEADER false)")
        pg.psql("CREATE TABLE ours (id int, h text, v float8); CREATE TABLE raw (id int, h text, v float8)")
        load = step_file(
            root,
            {
                "name": "load",
                "type": "load",
                "dependsOn": ["rows"],
                "config": {
                    "destination": "postgres",
                    "connection": "wh",
                    "table": "ours",
                    "mode": "overwrite",
                },
            },
        )
        env = worker_env(root, DATAWORKS_CONN_WH=pg.uri())
        ours, raw = [], []
        for _ in range(REPEAT):
            ours.append(timed([str(BIN / "dataworks-worker"), "--step-file", load], env=env))
            pg.psql("TRUNCATE raw")
            raw.append(timed(["psql", pg.uri(), "-q", "-c", f"\\copy raw FROM '{csv}' (FORMAT csv)"]))
        assert pg.psql("SELECT count(*) FROM ours") == str(rows)
    return {
        "rows": rows,
        "dataworks_s": statistics.median(ours),
        "psql_copy_s": statistics.median(raw),
        "ratio": statistics.median(ours) / statistics.median(raw),
        "target": 1.5,
    }


def bench_executor(root: Path, steps: int) -> dict[str, Any]:
    spec = [
        {
            "name": f"s{i}",
            "type": "container",
            "image": "busybox",
            "command": ["true"],
            **({"dependsOn": [f"s{i - 1}"]} if i else {}),
        }
        for i in range(steps)
    ]
    path = root / f"chain{steps}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "dataworks.io/v1",
                "kind": "Pipeline",
                "metadata": {"name": f"chain{steps}"},
                "spec": {"steps": spec},
            }
        )
    )
    total = timed([str(BIN / "pipeline-ctl"), "run", "--local", str(path), "--workdir", str(root / "runs")])
    return {"steps": steps, "total_s": total, "per_step_ms": 1000 * total / steps}


def bench_sftp(root: Path) -> dict[str, Any]:
    """A 200 MB parquet file over OpenSSH's sftp: the worker's fetch vs the sftp client's get."""
    sys.path.insert(0, str(REPO))
    from tests.local import services

    size_mb = int(os.environ.get("BENCH_SFTP_MB", "200"))
    (root / "sftp").mkdir()
    with services.sftp(root / "sftp") as server:
        target = server.home / "big.parquet"
        rows = size_mb * 1024 * 1024 // 40  # md5 hex strings compress poorly: ~40 bytes a row
        duckdb.sql(
            f"COPY (SELECT range AS id, md5(range::VARCHAR) AS h FROM range({rows})) "
            f"TO '{target}' (FORMAT parquet, COMPRESSION uncompressed)"
        )
        mib = target.stat().st_size / 2**20
        fetch = step_file(
            root, {"name": "sftp", "type": "fetch", "config": {"source": "partner", "path": "big.parquet"}}
        )
        env = worker_env(root, DATAWORKS_CONN_PARTNER=server.uri())
        client = [
            "sftp",
            "-q",
            "-b",
            "-",
            "-i",
            str(server.key_file),
            "-P",
            str(server.port),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            f"{server.user}@127.0.0.1",
        ]
        ours, raw = [], []
        for _ in range(REPEAT):
            ours.append(timed([str(BIN / "dataworks-worker"), "--step-file", fetch], env=env))
            raw.append(measured(client, stdin=f"get {target} {root / 'client.parquet'}\n")[0])
    return {
        "mib": round(mib),
        "dataworks_s": statistics.median(ours),
        "sftp_client_s": statistics.median(raw),
        "ratio": statistics.median(ours) / statistics.median(raw),
        "target": 1.5,
    }


def bench_big_pipeline(root: Path) -> dict[str, Any]:
    """fetch (PostgreSQL) -> transform -> load (PostgreSQL) of BIG_ROWS rows: time and peak RSS per step."""
    sys.path.insert(0, str(REPO))
    from tests.local import services

    rows = int(os.environ.get("BENCH_BIG_ROWS", "10000000"))
    out: dict[str, Any] = {"rows": rows}
    with services.postgres() as pg:
        pg.psql(
            f"CREATE TABLE events AS SELECT i AS id, i % 1000 AS user_id, md5(i::text) AS payload, "
            f"now() - (i % 86400) * interval '1 second' AS seen_at FROM generate_series(1, {rows}) i"
        )
        env = worker_env(root / "big", DATAWORKS_CONN_DB=pg.uri(), DATAWORKS_MEMORY_LIMIT="1GB")
        summary = (
            "SELECT user_id, count(*) AS n, max(seen_at) AS last_seen, min(payload) AS first_payload "
            "FROM events GROUP BY user_id "
            "UNION ALL SELECT id, 1, seen_at, payload FROM events WHERE id % 10 = 0"
        )
        steps = [
            {
                "name": "extract",
                "type": "fetch",
                "config": {"source": "db", "query": "SELECT * FROM events", "table": "events"},
            },
            {"name": "summarise", "type": "transform", "dependsOn": ["extract"], "config": {"sql": summary}},
            {
                "name": "publish",
                "type": "load",
                "dependsOn": ["summarise"],
                "config": {
                    "destination": "postgres",
                    "connection": "db",
                    "table": "summary",
                    "mode": "overwrite",
                },
            },
        ]
        for step in steps:
            took, rss = measured(
                [str(BIN / "dataworks-worker"), "--step-file", step_file(root, step)], env=env
            )
            out[step["name"]] = {"seconds": round(took, 2), "peak_rss_mib": rss}
    return out


def bench_quickstart(root: Path) -> dict[str, Any]:
    """README's first command, minus the install: the quickstart's wall time."""
    runs = [
        timed(
            [
                str(BIN / "pipeline-ctl"),
                "run",
                "--local",
                str(REPO / "examples" / "quickstart.yaml"),
                "--workdir",
                str(root / "qs"),
            ]
        )
        for _ in range(REPEAT)
    ]
    return {"wall_s": statistics.median(runs), "runs": len(runs)}


def main() -> None:
    out = REPO / "benchmarks" / "results" / "worker.json"
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
    result: dict[str, Any] = json.loads(out.read_text()) if only and out.exists() else {}
    root = Path(tempfile.mkdtemp(prefix="dataworks-bench-"))
    sections = {
        "transform": lambda: bench_transform(root, parquet),
        "fan_out": lambda: bench_fan_out(root),
        "postgres_load": lambda: bench_pg_load(root),
        "executor_chain_20": lambda: bench_executor(root, 20),
        "executor_chain_100": lambda: bench_executor(root, 100),
        "quickstart": lambda: bench_quickstart(root),
        "sftp": lambda: bench_sftp(root),
        "big_pipeline": lambda: bench_big_pipeline(root),
    }
    try:
        parquet = prepare(root)
        if not only:  # a partial rerun keeps the full run's parameters; its sections record their own
            result.update(rows=ROWS, repeat=REPEAT)
        for name, run in sections.items():
            if not only or name in only:
                result[name] = run()
                out.write_text(json.dumps(result, indent=2) + "\n")  # keep what is measured so far
    finally:
        shutil.rmtree(root, ignore_errors=True)
    table = Table(title=f"worker and local executor ({ROWS:,} rows, median of {REPEAT})")
    for col in ("what", "dataworks", "baseline", "ratio", "target"):
        table.add_column(col)
    t, f, p = result["transform"], result["fan_out"], result["postgres_load"]
    table.add_row(
        "transform vs duckdb CLI",
        f"{t['dataworks_s']:.2f}s",
        f"{t['duckdb_cli_s']:.2f}s",
        f"{t['ratio']:.2f}x",
        "<= 1.2x",
    )
    table.add_row(
        f"postgres load vs psql \\copy ({p['rows']:,} rows)",
        f"{p['dataworks_s']:.2f}s",
        f"{p['psql_copy_s']:.2f}s",
        f"{p['ratio']:.2f}x",
        "<= 1.5x",
    )
    table.add_row(
        "fan-out: 2 workers vs 1",
        f"{f['two_workers_s']:.2f}s",
        f"{f['one_worker_s']:.2f}s",
        f"{f['speedup']:.2f}x speedup",
        ">= 1.6x",
    )
    for key in ("executor_chain_20", "executor_chain_100"):
        e = result[key]
        table.add_row(
            f"local executor, {e['steps']} empty steps",
            f"{e['total_s']:.2f}s total",
            "",
            f"{e['per_step_ms']:.0f} ms/step",
            "<= 300 ms",
        )
    table.add_row(
        "quickstart (8 steps, 12 processes)", f"{result['quickstart']['wall_s']:.2f}s", "", "", "< 60 s"
    )
    sf = result["sftp"]
    table.add_row(
        f"sftp fetch of {sf['mib']} MiB vs sftp client",
        f"{sf['dataworks_s']:.2f}s",
        f"{sf['sftp_client_s']:.2f}s",
        f"{sf['ratio']:.2f}x",
        "<= 1.5x",
    )
    big = result["big_pipeline"]
    for name in ("extract", "summarise", "publish"):
        table.add_row(
            f"{big['rows']:,}-row pipeline: {name}",
            f"{big[name]['seconds']:.2f}s",
            "",
            f"peak {big[name]['peak_rss_mib']} MiB",
            "",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
