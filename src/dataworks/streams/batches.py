"""The `sql` and `sink` processings (edge layer): each micro-batch, before it is acknowledged.

A consumer hands over the messages of each batch it processed (decoded, duplicates dropped).
They become one Arrow table, `batch`, with a column per field seen in the batch (a field a
message lacks is null; a column whose values do not share a type is kept as JSON text). With a
query, DuckDB runs it over `batch`; its rows, or the batch itself, are then written:
- to a PostgreSQL table (`postgresql://HOST/DB?table=NAME`, pgsink.py), by COPY, committed
  before the batch is acknowledged;
- to the sink, one Parquet file per batch, `<consumer>-<start>-<n>.parquet` under the folder
  URL (fsspec: s3://, file://, ...): written whole or not at all (a local file is renamed into
  place; an object store's PUT is atomic), before the consumer acknowledges the batch, so an
  acknowledged message is always in a file (at least once: a batch processed again after a
  crash is written again, to a file of its own);
- without a sink, as JSON lines on stderr (the consumer's log).
Credentials for the store come from the environment (a Secret's keys, never the spec).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dataworks.streams.processing import log


class BatchWriter:
    def __init__(self, consumer: str, *, query: str | None, sink_url: str | None) -> None:
        self.consumer, self.query = consumer, query
        self.con = duckdb.connect()
        self.started = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}"
        self.batches = self.rows = 0
        self.fs: Any = None
        self.root = ""
        self.pg: Any = None
        if sink_url and sink_url.startswith(("postgresql://", "postgres://")):
            from dataworks.streams.pgsink import PostgresSink

            self.pg = PostgresSink(sink_url)
        elif sink_url:
            import fsspec

            self.fs, self.root = fsspec.core.url_to_fs(sink_url)
            self.fs.makedirs(self.root, exist_ok=True)
            self.local = "file" in (
                self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
            )

    def write(self, messages: list[dict[str, Any]]) -> None:
        """The batch through the query, written; raises if it cannot be (nothing is then acknowledged)."""
        if not messages:
            return
        table = _table(messages)
        if self.query is not None:
            self.con.register("batch", table)
            try:
                table = self.con.execute(self.query).arrow().read_all()
            finally:
                self.con.unregister("batch")
        self.batches += 1
        self.rows += table.num_rows
        if self.pg is not None:
            self.pg.write(table)  # committed: only then is the batch acknowledged
            return
        if self.fs is None:
            for row in table.to_pylist():
                log(json.dumps(row, default=str))
            return
        path = f"{self.root}/{self.consumer}-{self.started}-{self.batches:06d}.parquet"
        if self.local:  # whole or not at all: written beside, then renamed into place
            part = f"{path}.{uuid.uuid4().hex[:8]}.part"
            with self.fs.open(part, "wb") as f:
                pq.write_table(table, f)
            self.fs.mv(part, path)
        else:
            with self.fs.open(path, "wb") as f:
                pq.write_table(table, f)

    def close(self) -> None:
        self.con.close()
        if self.pg is not None:
            self.pg.close()


def _table(messages: list[dict[str, Any]]) -> pa.Table:
    fields = dict.fromkeys(k for m in messages for k in m)
    return pa.table({name: _column([m.get(name) for m in messages]) for name in fields})


def _column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types (a schema change in the batch)
        return pa.array([None if v is None else json.dumps(v) for v in values], type=pa.string())
