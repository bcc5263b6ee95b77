"""The fetch step (edge layer): a SQL connection or files -> parquet tables.

source: campaigns_db            # a named connection (DATAWORKS_CONN_CAMPAIGNS_DB)
query: SELECT * FROM campaigns  # or tables: [orders, customers] (+ partition_date / where)
table: campaigns                # the output's table name (default: the step name)

url: https://example.com/data/events.csv   # or path:, or source: + path:/prefix:/glob:
format: csv                     # csv | json | jsonl | parquet; default from the extension
"""

from __future__ import annotations

from dataworks.worker import sources
from dataworks.worker.connections import FILE_SCHEMES, SQL_SCHEMES
from dataworks.worker.runtime import StepContext, literal, quote


def _queries(ctx: StepContext) -> list[tuple[str, str]]:
    cfg = ctx.config
    if cfg.get("query"):
        return [(str(cfg.get("table") or ctx.name), str(cfg["query"]))]
    tables = cfg.get("tables")
    if not tables:
        raise ctx.fail("query", "a fetch from a SQL connection needs `query` or `tables`")
    if isinstance(tables, str):
        tables = [tables]
    where = cfg.get("where")
    if cfg.get("partition_date") is not None:
        column = cfg.get("partition_column", "partition_date")
        where = f"{quote(column)} = {literal(str(cfg['partition_date']))}" + (
            f" AND ({where})" if where else ""
        )
    prefix = str(cfg.get("table_prefix", ""))
    out = []
    for t in tables:
        sql = f"SELECT * FROM {'.'.join(quote(p) for p in str(t).split('.'))}"
        out.append((prefix + str(t).split(".")[-1], sql + (f" WHERE {where}" if where else "")))
    return out


def run(ctx: StepContext) -> None:
    cfg = ctx.config
    if cfg.get("source"):
        conn = ctx.connection(str(cfg["source"]))
        if conn.scheme in SQL_SCHEMES:
            fetch = {
                "postgresql": sources.fetch_postgres,
                "sqlite": sources.fetch_sqlite,
                "duckdb": sources.fetch_duckdb,
            }[conn.scheme]
            queries = _queries(ctx)
            for n, (table, sql) in enumerate(queries):
                fetch(ctx, conn, table, sql)
                ctx.progress((n + 1) / len(queries))
            return
        if conn.scheme not in FILE_SCHEMES:
            raise ctx.fail("source", f"connection {conn.name!r} has unsupported scheme {conn.scheme!r}")
        rel = str(cfg.get("path") or cfg.get("prefix") or cfg.get("glob") or "")
        sources.fetch_files(ctx, str(cfg.get("table") or ctx.name), rel, conn)
    else:
        url = str(cfg.get("url") or cfg.get("path"))  # one of them is set (core.pipelines.stepconfigs)
        sources.fetch_files(ctx, str(cfg.get("table") or ctx.name), url)
    ctx.progress(1.0)
