"""The sink into PostgreSQL (edge layer): each micro-batch COPYed into a table, committed
before the batch is acknowledged.

`postgresql://HOST[:PORT]/DB?table=NAME` (the URL holds no credential: libpq reads PGUSER and
PGPASSWORD, or any other PG* variable, from the environment, which a StreamingJob's
`sink.secretName` fills from a Secret). Each batch, after the query when there is one, is one
transaction: the table is created on first use with a column per field (bigint, double
precision, boolean, timestamptz or text, from the Arrow types; anything else as jsonb),
a column that appears later (a schema change) is added, and the rows go in by COPY. The
consumer acknowledges the batch only after the COMMIT: an acknowledged message is in the
table, and a batch processed again after a crash is inserted again (at least once: a reader
that needs each message once deduplicates on `message_id`). No unique key is created: a batch
that broke one would fail for ever, and never be acknowledged.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pyarrow as pa

TYPES = (
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_integer, "bigint"),
    (pa.types.is_floating, "double precision"),
    (pa.types.is_timestamp, "timestamptz"),
    (pa.types.is_string, "text"),
    (pa.types.is_large_string, "text"),
)


def split(url: str) -> tuple[str, str]:
    """(libpq's conninfo URL, the table) from a sink URL."""
    u = urlsplit(url)
    tables = parse_qs(u.query).get("table") or []
    if len(tables) != 1 or u.username or u.password:
        raise ValueError(
            f"sink URL {url!r}: postgresql://HOST[:PORT]/DB?table=NAME, credentials from the env"
        )
    return urlunsplit(("postgresql", u.netloc, u.path, "", "")), tables[0]


def pg_type(t: pa.DataType) -> str:
    return next((name for test, name in TYPES if test(t)), "jsonb")


class PostgresSink:
    def __init__(self, url: str) -> None:
        import psycopg

        conninfo, self.table = split(url)
        self.conn = psycopg.connect(conninfo, autocommit=False)
        self.columns: set[str] | None = None  # the table's, once known

    def write(self, table: pa.Table) -> None:
        """The batch, in one transaction: the table and new columns if needed, then COPY."""
        from psycopg import sql

        names = table.column_names
        try:
            with self.conn.cursor() as cur:
                self._columns(cur, table)
                target = sql.Identifier(*self.table.split(".", 1))
                copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    target, sql.SQL(", ").join(sql.Identifier(n) for n in names)
                )
                jsonb = [pg_type(t) == "jsonb" for t in table.schema.types]
                with cur.copy(copy) as out:
                    for row in table.to_pylist():
                        out.write_row(
                            [json.dumps(row[n], default=str) if j and row[n] is not None else row[n]
                             for n, j in zip(names, jsonb, strict=True)]
                        )  # fmt: skip
            self.conn.commit()
        except Exception:
            self.conn.rollback()
            self.columns = None  # read again: a rolled-back CREATE or ALTER left nothing
            raise

    def _columns(self, cur: Any, table: pa.Table) -> None:
        from psycopg import sql

        target = sql.Identifier(*self.table.split(".", 1))
        if self.columns is None:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (self.table,))
            if not cur.fetchone()[0]:
                cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ()").format(target))
            cur.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(target))
            self.columns = {d.name for d in cur.description or []}
        for name, t in zip(table.column_names, table.schema.types, strict=True):
            if name not in self.columns:
                cur.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        target, sql.Identifier(name), sql.SQL(pg_type(t))
                    )
                )
                self.columns.add(name)

    def close(self) -> None:
        self.conn.close()
