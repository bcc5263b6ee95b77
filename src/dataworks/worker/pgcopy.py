"""Binary COPY into PostgreSQL (edge layer): the load step's fast path.

DuckDB hands the input over as Arrow record batches, pgpq (a Rust encoder of
Arrow into PostgreSQL's binary COPY format) encodes them, and PostgreSQL reads
them without parsing text. On 1 M rows this beat even `psql \\copy` of a ready
CSV (benchmarks/bench_worker.py). Binary input is strict about types, so it is
used only when every target column's type is exactly the one the encoder
writes; otherwise the load sends CSV, which PostgreSQL converts as it reads.
The check runs inside the load's transaction and can raise no error there
(`to_regtype`/`to_regclass` answer NULL instead).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pgpq
import psycopg
import pyarrow as pa

BATCH_ROWS = 64 * 1024


def encoder(
    cur: psycopg.Cursor[Any], table: str, columns: list[str], schema: pa.Schema
) -> tuple[pgpq.ArrowToPostgresBinaryEncoder | None, str]:
    """The encoder for loading `columns` of `schema` into `table`, or None and why not."""
    try:
        enc = pgpq.ArrowToPostgresBinaryEncoder(schema)
    except (ValueError, TypeError) as e:
        return None, f"the input has a type binary COPY cannot encode ({e})"
    wanted = [column.data_type.ddl() or "" for column in enc.schema().columns]
    cur.execute(
        "SELECT t.col, format_type(a.atttypid, NULL), t.want, a.atttypid = to_regtype(t.want) "
        "FROM unnest(%s::text[], %s::text[]) AS t(col, want) "
        "LEFT JOIN pg_attribute a ON a.attrelid = to_regclass(%s) AND a.attname = t.col "
        "AND NOT a.attisdropped",
        (columns, wanted, table),
    )
    for col, has, want, same in cur.fetchall():
        if not same:
            return None, f"column {col} is {has}, the input gives {want.lower()}"
    return enc, ""


def copy(
    cur: psycopg.Cursor[Any],
    statement: str,
    enc: pgpq.ArrowToPostgresBinaryEncoder,
    batches: pa.RecordBatchReader,
    progress: Callable[[int], None],
) -> int:
    """Run `statement` (a COPY ... FROM STDIN (FORMAT binary)) with the batches; rows sent."""
    sent = 0
    with cur.copy(statement) as out:
        out.write(enc.write_header())
        for batch in batches:
            out.write(enc.write_batch(batch))
            sent += batch.num_rows
            progress(sent)
        out.write(enc.finish())
    return sent
