"""The fan-out step (edge layer): worker <index> of <total> takes its chunk of the input.

    parallelism: 5
    chunk_strategy: hash-based      # hash(key) % N = index   (needs key:, default the first column)
                                    # count-based: contiguous row ranges (the default)
                                    # size-based: the input's files, balanced by size
    key: user_id
    input: users                    # which upstream table to split (default: the only one)
    sql: SELECT segment, count(*) AS n FROM chunk GROUP BY segment
    # or  script: "python analyze_segments.py"  (or command: [...]); the script gets
    #     WORKER_INDEX, TOTAL_WORKERS, DATAWORKS_INPUT (a parquet file of its chunk) and
    #     DATAWORKS_OUTPUT (write parquet there: a file, or a directory of files)

The chunk is visible to SQL as `chunk` and under the input table's own name.
Each worker commits its own part; the step's output exists once all have.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from dataworks.core.pipelines import stepconfigs
from dataworks.worker.errors import StepFailed
from dataworks.worker.runtime import StepContext, literal, only_input, quote
from dataworks.worker.storing import TableOutput


def balance(sizes: list[int], workers: int) -> list[list[int]]:
    """File indexes per worker: largest first onto the least loaded (deterministic)."""
    loads = [0] * workers
    out: list[list[int]] = [[] for _ in range(workers)]
    for i in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        target = min(range(workers), key=lambda w: (loads[w], w))
        out[target].append(i)
        loads[target] += sizes[i]
    return [sorted(x) for x in out]


def row_range(ctx: StepContext, files: list[str], source: str) -> str:
    """Rows [start, end) of the input, in file order, read by row number: DuckDB skips the
    row groups outside the range instead of reading and discarding them (as OFFSET would)."""
    listing = ", ".join(literal(f) for f in files)
    counts = dict(
        ctx.duckdb.execute(
            f"SELECT file_name, max(num_rows) FROM parquet_file_metadata([{listing}]) GROUP BY 1"
        ).fetchall()
    )
    total = sum(int(counts.get(f, 0)) for f in files)
    start, end = ctx.index * total // ctx.total, (ctx.index + 1) * total // ctx.total
    parts, offset = [], 0
    for f in files:
        n = int(counts.get(f, 0))
        lo, hi = max(start - offset, 0), min(end - offset, n)
        if lo < hi:
            parts.append(
                f"SELECT * EXCLUDE (file_row_number) FROM read_parquet([{literal(f)}], file_row_number=true) "
                f"WHERE file_row_number >= {lo} AND file_row_number < {hi}"
            )
        offset += n
    return " UNION ALL ".join(parts) or f"SELECT * FROM {source} LIMIT 0"


def chunk_query(ctx: StepContext, table: TableOutput) -> str:
    strategy = stepconfigs.chunk_strategy(ctx.config)  # one of CHUNK_STRATEGIES (core.pipelines.stepconfigs)
    key = ctx.config.get("key")
    files = table.files
    if not files:
        return "SELECT NULL AS empty WHERE false"
    source = f"read_parquet([{', '.join(literal(f) for f in files)}])"
    if strategy == "size-based":
        sizes = [Path(f).stat().st_size if ctx.store.local else int(ctx.store.fs.size(f) or 0) for f in files]
        mine = [files[i] for i in balance(sizes, ctx.total)[ctx.index]]
        if not mine:  # more workers than files: an empty chunk with the input's columns
            return f"SELECT * FROM {source} LIMIT 0"
        return f"SELECT * FROM read_parquet([{', '.join(literal(f) for f in mine)}])"
    if strategy == "hash-based":
        if not key:
            key = ctx.duckdb.execute(f"DESCRIBE SELECT * FROM {source}").fetchone()[0]  # type: ignore[index]
        keys = [key] if isinstance(key, str) else list(key)
        columns = {r[0] for r in ctx.duckdb.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        missing = [k for k in keys if k not in columns]
        if missing:
            raise ctx.fail(
                "key", f"column {missing[0]!r} is not in the input (columns: {', '.join(sorted(columns))})"
            )
        expr = ", ".join(quote(k) for k in keys)
        return f"SELECT * FROM {source} WHERE hash({expr}) % {ctx.total} = {ctx.index}"
    return row_range(ctx, files, source)  # count-based


def _command(ctx: StepContext) -> list[str]:
    raw: Any = ctx.config.get("command") or ctx.config.get("script")
    argv = shlex.split(raw) if isinstance(raw, str) else [str(a) for a in raw]
    if argv and argv[0] in {"python", "python3"}:
        argv[0] = sys.executable  # the worker's own interpreter, with pyarrow and duckdb
    return argv


def run_script(ctx: StepContext, table: str, chunk: str) -> None:
    con = ctx.duckdb
    input_path = ctx.scratch / "input.parquet"
    con.execute(f"COPY ({chunk}) TO {literal(str(input_path))} (FORMAT parquet)")
    output = ctx.scratch / "output"
    env = {
        **ctx.environ,
        "WORKER_INDEX": str(ctx.index),
        "TOTAL_WORKERS": str(ctx.total),
        "DATAWORKS_INPUT": str(input_path),
        "DATAWORKS_OUTPUT": str(output),
        "PYTHONUNBUFFERED": "1",
    }
    argv = _command(ctx)
    cwd = ctx.environ.get("DATAWORKS_SCRIPTS_DIR") or ctx.environ.get("DATAWORKS_PIPELINE_DIR") or None
    try:
        child = subprocess.Popen(argv, env=env, cwd=cwd)  # inherits stdout: its PROGRESS lines pass through
    except OSError as e:
        raise ctx.fail("script", f"cannot start {argv[0]!r}: {e.strerror}") from e
    ctx.children.append(child)
    code = child.wait()
    if code != 0:
        raise StepFailed(
            f"step {ctx.name!r} worker {ctx.index}: script {shlex.join(argv)} exited with {code}",
            exit_code=code if 0 < code < 128 else 1,
        )
    parts = sorted(output.rglob("*.parquet")) if output.is_dir() else [output] if output.exists() else []
    for part in parts:
        ctx.add_output(table, part, pq.read_metadata(part).num_rows)


def run(ctx: StepContext) -> None:
    inputs = ctx.register_inputs()
    # A fan-out with no upstream step still runs its workers, each on an empty chunk.
    _, table = only_input(ctx, inputs, "input") if inputs else ("", TableOutput())
    chunk = chunk_query(ctx, table)
    ctx.duckdb.execute(f"CREATE OR REPLACE VIEW chunk AS {chunk}")
    out_table = str(ctx.config.get("table") or ctx.name)
    if ctx.config.get("sql"):
        for alias in {n for n, o in inputs.items() if o is table}:
            ctx.duckdb.execute(f"CREATE OR REPLACE VIEW {quote(alias)} AS SELECT * FROM chunk")
        ctx.write_query(out_table, str(ctx.config["sql"]).strip().rstrip(";"))
    else:  # core.pipelines.stepconfigs requires one of sql, script and command
        run_script(ctx, out_table, chunk)
    ctx.progress(1.0)
