"""The transform step (edge layer): SQL over the upstream tables -> new tables.

    sql: |                          # inline, or a file name: transform_to_star_schema.sql
      DELETE FROM raw_orders WHERE total_amount < 0;
      SELECT * FROM raw_orders
    output: [orders, events]        # optional: the tables to keep; default the last query,
                                    # or every working table when the script ends in DML/DDL
    engine: duckdb                  # or postgres, with connection: warehouse_db

DuckDB sees each upstream output as a table named after the step (or its
`table:`). Inputs are views over parquet unless the script changes them, in
which case they are copied into DuckDB's working database first. With
`engine: postgres` the inputs are copied into temporary tables of one
transaction, the script runs there, the outputs are copied out and the
transaction is rolled back: the database is left exactly as it was.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from dataworks.core.pipelines import stepconfigs
from dataworks.worker.errors import StepFailed
from dataworks.worker.runtime import StepContext, literal, quote

if TYPE_CHECKING:
    import psycopg

DUCK_TO_PG = {
    "BOOLEAN": "boolean", "TINYINT": "smallint", "SMALLINT": "smallint", "INTEGER": "integer",
    "BIGINT": "bigint", "HUGEINT": "numeric", "FLOAT": "real", "DOUBLE": "double precision",
    "DATE": "date", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "VARCHAR": "text", "UUID": "uuid", "JSON": "jsonb", "BLOB": "bytea", "TIME": "time",
    "INTERVAL": "interval", "UBIGINT": "numeric", "UINTEGER": "bigint",
}  # fmt: skip


def pg_type(duck_type: str) -> str:
    if duck_type.startswith("DECIMAL"):
        return duck_type.replace("DECIMAL", "numeric")
    return DUCK_TO_PG.get(duck_type, "text")


def script(ctx: StepContext) -> str:
    """The SQL text: inline, or read from a `.sql` file in DATAWORKS_SQL_DIR."""
    sql = str(ctx.config.get("sql") or "").strip()  # not empty (core.pipelines.stepconfigs)
    if sql.endswith(".sql") and "\n" not in sql and " " not in sql:
        folder = Path(
            ctx.environ.get("DATAWORKS_SQL_DIR") or ctx.environ.get("DATAWORKS_PIPELINE_DIR") or "."
        )
        path = folder / sql
        if not path.is_file():
            raise ctx.fail("sql", f"the SQL file {sql} is not in {folder.resolve()} (set DATAWORKS_SQL_DIR)")
        return path.read_text()
    return sql


def outputs(ctx: StepContext) -> list[str]:
    out = ctx.config.get("output") or ctx.config.get("outputs") or []
    return [str(out)] if isinstance(out, str) else [str(t) for t in out]


def statements(ctx: StepContext, sql: str) -> list[duckdb.Statement]:
    try:
        found = ctx.duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise StepFailed(f"step {ctx.name!r}: SQL error: {e}") from e
    if not found:
        raise ctx.fail("sql", "contains no statement")
    return found


def execute(ctx: StepContext, stmt: duckdb.Statement, n: int, total: int) -> None:
    try:
        ctx.duckdb.execute(stmt.query)
    except duckdb.Error as e:
        where = f" (statement {n} of {total})" if total > 1 else ""
        raise StepFailed(f"step {ctx.name!r}: SQL error{where}: {e}") from e


def run_duckdb(ctx: StepContext, sql: str, default_table: str) -> None:
    stmts = statements(ctx, sql)
    changes = any(s.type != duckdb.StatementType.SELECT for s in stmts)
    ctx.register_inputs(materialize=changes)
    named = outputs(ctx)
    last = stmts[-1]
    final_query = not named and last.type == duckdb.StatementType.SELECT
    body = stmts[:-1] if final_query else stmts
    for n, stmt in enumerate(body, 1):
        execute(ctx, stmt, n, len(stmts))
        ctx.progress(n / len(stmts))
    if final_query:
        ctx.write_query(default_table, last.query)
        return
    if not named:  # a script of DML/DDL: its result is every working table
        rows = ctx.duckdb.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = 'work' AND table_schema = 'main' AND table_type = 'BASE TABLE'"
        ).fetchall()
        named = [str(r[0]) for r in rows]
    for table in named:
        ctx.write_query(table, f"SELECT * FROM {quote(table)}")


def _copy_in(ctx: StepContext, cur: psycopg.Cursor[tuple[object, ...]], table: str, files: list[str]) -> None:
    con = ctx.duckdb
    source = f"read_parquet([{', '.join(literal(f) for f in files)}])"
    schema = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    columns = ", ".join(f"{quote(str(r[0]))} {pg_type(str(r[1]))}" for r in schema)
    cur.execute(f"CREATE TEMP TABLE {quote(table)} ({columns})")
    path = ctx.scratch / f"in-{table}.csv"
    con.execute(f"COPY (SELECT * FROM {source}) TO {literal(str(path))} (FORMAT csv, HEADER false)")
    with cur.copy(f"COPY {quote(table)} FROM STDIN (FORMAT csv)") as copy, path.open("rb") as f:
        while chunk := f.read(1 << 20):
            copy.write(chunk)
    path.unlink()


def _copy_out(ctx: StepContext, cur: psycopg.Cursor[tuple[object, ...]], table: str, query: str) -> None:
    cur.execute(f"SELECT * FROM ({query}) AS q LIMIT 0")
    names = [c.name for c in cur.description or []]
    path = ctx.scratch / f"out-{table}.csv"
    with path.open("wb") as out, cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv, HEADER true)") as copy:
        for chunk in copy:
            out.write(chunk)
    if names and path.stat().st_size == 0:  # PostgreSQL writes no header for zero rows
        buffer = io.StringIO()
        csv.writer(buffer).writerow(names)
        path.write_text(buffer.getvalue())
    ctx.write_query(
        table, f"SELECT * FROM read_csv({literal(str(path))}, header=true, allow_quoted_nulls=false)"
    )


def run_postgres(ctx: StepContext, sql: str, default_table: str) -> None:
    import psycopg  # only this engine needs it: DuckDB transforms start faster without

    from dataworks.worker import sources

    conn = ctx.connection(str(ctx.config.get("connection") or ctx.config.get("source")))
    inputs = ctx.input_tables()
    named = outputs(ctx)
    try:
        parts = [s.query for s in ctx.duckdb.extract_statements(sql)]
    except duckdb.Error:
        parts = [sql]  # PostgreSQL-only syntax: run as one batch; outputs must be named
    with sources.pg_connect(ctx, conn) as pg, pg.cursor() as cur:
        try:
            for table, out in inputs.items():
                if out.files:
                    _copy_in(ctx, cur, table, out.files)
            last = parts[-1]
            is_query = not named and last.lstrip().upper().startswith(("SELECT", "WITH", "VALUES", "TABLE"))
            for stmt in parts[:-1] if is_query else parts:
                cur.execute(stmt)
            if is_query:
                _copy_out(ctx, cur, default_table, last.rstrip().rstrip(";"))
            elif not named:
                raise ctx.fail("output", "name the tables to keep when the script does not end in a query")
            for table in named:
                _copy_out(ctx, cur, table, f"SELECT * FROM {quote(table)}")
        except psycopg.Error as e:
            raise sources.sql_error(ctx, e, sql) from e
        finally:
            pg.rollback()


def run(ctx: StepContext) -> None:
    sql = script(ctx)
    default_table = str(ctx.config.get("table") or ctx.name)
    if stepconfigs.transform_engine(ctx.config) == "postgres":
        run_postgres(ctx, sql, default_table)
    else:
        run_duckdb(ctx, sql, default_table)
    ctx.progress(1.0)
