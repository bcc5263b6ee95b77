"""The load step (edge layer): an upstream table -> PostgreSQL, files, DuckDB or SQLite.

    destination: postgres           # postgres | file | duckdb | sqlite
    connection: warehouse_db        # the named connection to write to
    table: analytics.daily_orders   # the destination table (default: the input's name)
    mode: upsert                    # append (default) | overwrite | upsert
    key: [order_id]                 # upsert's key columns
    input: orders                   # which upstream table (default: the only one)

    destination: file
    url: s3://bucket/exports/orders/    # or path:, or connection: + path:
    format: parquet                 # parquet | csv | jsonl
    partition_by: [order_date]

Each load is all or nothing. PostgreSQL: one transaction around TRUNCATE/COPY/
upsert, so a failure anywhere leaves the table as it was. Files: written
aside, then renamed into place. DuckDB and SQLite: one transaction.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import fsspec
import psycopg
from fsspec.implementations.local import LocalFileSystem

from dataworks.core.pipelines import stepconfigs
from dataworks.worker import pgcopy, sources
from dataworks.worker.connections import Connection
from dataworks.worker.errors import StepFailed
from dataworks.worker.runtime import StepContext, literal, only_input, quote
from dataworks.worker.steps.transforming import pg_type


def _qualified(name: str) -> str:
    return ".".join(quote(p) for p in name.split("."))


class Load:
    """One load: the input as a DuckDB view `load_input`, its columns, the mode and keys."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        inputs = ctx.register_inputs()
        self.input, chosen = only_input(ctx, inputs, "input")
        ctx.duckdb.execute(f"CREATE OR REPLACE VIEW load_input AS SELECT * FROM {quote(self.input)}")
        self.schema = [(str(r[0]), str(r[1])) for r in ctx.duckdb.execute("DESCRIBE load_input").fetchall()]
        self.columns = [c for c, _ in self.schema]
        self.rows = chosen.rows
        self.table = str(ctx.config.get("table") or self.input)
        # The mode is one of LOAD_MODES and upsert has keys: checked in core.pipelines.stepconfigs.
        self.mode = str(ctx.config.get("mode", "append"))
        self.keys = stepconfigs.load_keys(ctx.config)
        for k in self.keys:
            if k not in self.columns:
                raise ctx.fail(
                    "key", f"key column {k!r} is not in the input (columns: {', '.join(self.columns)})"
                )

    def csv_chunks(self) -> Iterator[bytes]:
        """The input as CSV, streamed: DuckDB writes into a FIFO from a second thread while
        the caller sends what arrives, so exporting and loading overlap."""
        fifo = self.ctx.scratch / "load.fifo"
        os.mkfifo(fifo)
        failure: list[BaseException] = []

        def export() -> None:
            try:
                self.ctx.duckdb.cursor().execute(
                    f"COPY load_input TO {literal(str(fifo))} (FORMAT csv, HEADER false)"
                )
            except BaseException as e:  # handed to the reading thread below
                failure.append(e)
                with open(fifo, "wb"):  # unblock the reader if DuckDB never opened the FIFO
                    pass

        writer = threading.Thread(target=export, daemon=True)
        writer.start()
        with open(fifo, "rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk
        writer.join()
        if failure:
            raise StepFailed(f"step {self.ctx.name!r}: cannot read the input: {failure[0]}") from failure[0]


def to_postgres(ctx: StepContext, load: Load, conn: Connection) -> None:
    cols = ", ".join(quote(c) for c in load.columns)
    target = _qualified(load.table)
    size = max(1, load.rows)
    with sources.pg_connect(ctx, conn) as pg, pg.cursor() as cur:
        try:
            cur.execute("SELECT to_regclass(%s)", (target,))
            exists = (cur.fetchone() or (None,))[0] is not None
            if exists:
                cur.execute(f"SELECT * FROM {target} LIMIT 0")
                have = {c.name for c in cur.description or []}
                missing = [c for c in load.columns if c not in have]
                if missing:
                    raise ctx.fail(
                        "table",
                        f"{load.table} has no column {', '.join(map(repr, missing))} "
                        f"(it has {', '.join(sorted(have))}); add it or select matching columns upstream",
                    )
            else:
                ddl = ", ".join(f"{quote(c)} {pg_type(t)}" for c, t in load.schema)
                cur.execute(f"CREATE TABLE {target} ({ddl})")
            into = target
            if load.mode == "overwrite":
                cur.execute(f"TRUNCATE {target}")
            elif load.mode == "upsert":
                into = quote(f"stage_{secrets.token_hex(4)}")
                cur.execute(f"CREATE TEMP TABLE {into} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP")
            batches = (
                ctx.duckdb.cursor()
                .execute(f"SELECT {cols} FROM load_input")
                .to_arrow_reader(pgcopy.BATCH_ROWS)
            )
            enc, why = pgcopy.encoder(cur, into, load.columns, batches.schema)
            if enc is not None:
                pgcopy.copy(
                    cur,
                    f"COPY {into} ({cols}) FROM STDIN (FORMAT binary)",
                    enc,
                    batches,
                    lambda sent: ctx.progress(0.95 * min(1.0, sent / size)),
                )
                ctx.log(f"load: binary COPY of {load.rows} rows into {load.table}")
            else:
                batches.close()
                ctx.log(f"load: CSV COPY into {load.table}, not binary: {why}")
                _copy_csv(ctx, load, cur, f"COPY {into} ({cols}) FROM STDIN (FORMAT csv)")
            if load.mode == "upsert":
                match = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in load.keys)
                cur.execute(f"DELETE FROM {target} AS t USING {into} AS s WHERE {match}")
                cur.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {into}")
            pg.commit()
        except psycopg.Error as e:
            pg.rollback()
            raise StepFailed(
                f"step {ctx.name!r}: load into {load.table} failed and was rolled back, "
                f"the table is unchanged: {str(e).strip()}"
            ) from e
    ctx.summary.rows_out = load.rows


def _copy_csv(ctx: StepContext, load: Load, cur: psycopg.Cursor[Any], statement: str) -> None:
    sent, size = 0, max(1, load.rows)
    with cur.copy(statement) as copy:
        for chunk in load.csv_chunks():
            copy.write(chunk)
            sent += chunk.count(b"\n")  # rows, near enough: quoted newlines are rare
            ctx.progress(0.95 * min(1.0, sent / size))


def _database_load(ctx: StepContext, load: Load, path: str) -> None:
    """DuckDB file destination: one transaction in the attached file."""
    con = ctx.duckdb
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"ATTACH {literal(path)} AS dest")
    target = f"dest.{_qualified(load.table)}"
    try:
        con.execute("BEGIN")
        if load.mode == "overwrite":
            con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM load_input")
        else:
            con.execute(f"CREATE TABLE IF NOT EXISTS {target} AS SELECT * FROM load_input WITH NO DATA")
            if load.mode == "upsert":
                match = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in load.keys)
                con.execute(f"DELETE FROM {target} AS t USING load_input AS s WHERE {match}")
            cols = ", ".join(quote(c) for c in load.columns)
            con.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM load_input")
        con.execute("COMMIT")
    except duckdb.Error as e:
        con.execute("ROLLBACK")
        raise StepFailed(f"step {ctx.name!r}: load into {path} failed and was rolled back: {e}") from e
    finally:
        con.execute("DETACH dest")
    ctx.summary.rows_out = load.rows


def _sqlite_load(ctx: StepContext, load: Load, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    target = quote(load.table)
    cols = ", ".join(quote(c) for c in load.columns)
    try:
        db.execute("BEGIN IMMEDIATE")
        if load.mode == "overwrite":
            db.execute(f"DROP TABLE IF EXISTS {target}")
        db.execute(f"CREATE TABLE IF NOT EXISTS {target} ({cols})")
        marks = ", ".join("?" for _ in load.columns)
        reader = ctx.duckdb.execute("SELECT * FROM load_input").fetch_record_batch(50_000)
        for batch in reader:
            rows = [tuple(r.values()) for r in batch.to_pylist()]
            if load.mode == "upsert":
                match = " AND ".join(f"{quote(k)} = ?" for k in load.keys)
                idx = [load.columns.index(k) for k in load.keys]
                db.executemany(
                    f"DELETE FROM {target} WHERE {match}", [tuple(r[i] for i in idx) for r in rows]
                )
            db.executemany(f"INSERT INTO {target} ({cols}) VALUES ({marks})", rows)
        db.execute("COMMIT")
    except sqlite3.Error as e:
        db.execute("ROLLBACK")
        raise StepFailed(f"step {ctx.name!r}: load into {path} failed and was rolled back: {e}") from e
    finally:
        db.close()
    ctx.summary.rows_out = load.rows


def _file_load(ctx: StepContext, load: Load, url: str, options: dict[str, Any]) -> None:
    fmt, problem = stepconfigs.load_file_format(ctx.config, url)
    if fmt is None:  # checked before the step started whenever the URL is in the config
        raise ctx.fail(*(problem or ("format", "unknown")))
    partition = ctx.config.get("partition_by") or []
    partition = [partition] if isinstance(partition, str) else list(partition)
    directory = url.endswith("/") or bool(partition)
    local = ctx.scratch / "export"
    target = local if directory else ctx.scratch / f"export.{fmt}"
    copy_opts = {"parquet": "FORMAT parquet", "csv": "FORMAT csv, HEADER true", "jsonl": "FORMAT json"}[fmt]
    if partition:
        copy_opts += ", PARTITION_BY (" + ", ".join(quote(p) for p in partition) + ")"
    if directory and not partition:
        local.mkdir()
        target = local / f"part-{secrets.token_hex(4)}.{fmt}"
    try:
        ctx.duckdb.execute(f"COPY load_input TO {literal(str(target))} ({copy_opts})")
    except duckdb.Error as e:
        raise StepFailed(f"step {ctx.name!r}: cannot write {fmt}: {e}") from e
    fs, path = fsspec.core.url_to_fs(url, **options)
    path = str(path).rstrip("/")
    if isinstance(fs, LocalFileSystem):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if directory and load.mode == "append" and Path(path).is_dir():
            for f in local.rglob("*"):
                if f.is_file():
                    dest = Path(path) / f.relative_to(local)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    f.replace(dest)
        else:  # build beside the target, then swap it in
            staged = Path(f"{path}.dataworks-{secrets.token_hex(4)}")
            shutil.move(str(target if not directory else local), staged)
            old = Path(f"{path}.dataworks-old-{secrets.token_hex(4)}")
            if Path(path).exists():
                Path(path).rename(old)
            staged.rename(path)
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    elif directory:
        if load.mode == "overwrite" and fs.exists(path):
            fs.rm(path, recursive=True)
        fs.put(str(local) + "/", path + "/", recursive=True)
    else:
        fs.put_file(str(target), path)  # one PUT: the object appears whole or not at all
    ctx.summary.rows_out = load.rows


def run(ctx: StepContext) -> None:
    cfg = ctx.config
    target = stepconfigs.load_target(cfg)  # its requirements were checked in core.pipelines.stepconfigs
    kind = target.kind
    load = Load(ctx)
    conn = ctx.connection(str(cfg["connection"])) if cfg.get("connection") else None
    ctx.summary.rows_in = load.rows
    if kind in {"postgres", "postgresql"}:
        assert conn is not None
        to_postgres(ctx, load, conn)
    elif kind in {"duckdb", "sqlite"}:
        path = target.rel or (conn.path if conn else "")
        (_database_load if kind == "duckdb" else _sqlite_load)(ctx, load, path)
    elif conn is not None:
        url = conn.base_url().rstrip("/") + "/" + target.rel.lstrip("/")
        _file_load(ctx, load, url, conn.storage_options())
    else:
        _file_load(ctx, load, target.rel, {})
    ctx.progress(1.0)
