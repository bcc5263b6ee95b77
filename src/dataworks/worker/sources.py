"""Reading from connections (edge layer): SQL databases and fsspec file systems.

PostgreSQL rows stream out through `COPY ... TO STDOUT` into a local CSV that
DuckDB reads with the exact column types PostgreSQL reported, so nothing is
held in Python memory. Files arrive through fsspec (local, http(s), sftp, s3)
and are read by DuckDB. Every failure names the step, the connection and host.
"""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from dataworks.worker.connections import Connection
from dataworks.worker.errors import StepFailed
from dataworks.worker.runtime import StepContext, literal, quote

# PostgreSQL type name -> DuckDB type, for columns COPY hands over as text.
PG_TYPES = {
    "int2": "SMALLINT",
    "int4": "INTEGER",
    "int8": "BIGINT",
    "float4": "REAL",
    "float8": "DOUBLE",
    "numeric": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "time": "TIME",
    "uuid": "UUID",
    "json": "JSON",
    "jsonb": "JSON",
    "bytea": "BLOB",
    "interval": "INTERVAL",
}
FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}
CONNECT_TIMEOUT = 10


def pg_connect(ctx: StepContext, conn: Connection, **kwargs: Any) -> psycopg.Connection[Any]:
    if "connect_timeout=" not in conn.uri:  # the URI's own value wins
        kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)
    try:
        return psycopg.connect(conn.uri, **kwargs)
    except psycopg.OperationalError as e:
        raise StepFailed(
            f"step {ctx.name!r}: cannot connect to PostgreSQL at {conn.host} "
            f"(connection {conn.name!r}): {str(e).strip()}"
        ) from e


def sql_error(ctx: StepContext, e: Exception, sql: str) -> StepFailed:
    text = str(e).strip()
    if isinstance(e, psycopg.Error) and e.diag.statement_position:
        pos = int(e.diag.statement_position)
        line_no = sql.count("\n", 0, pos - 1) + 1
        line = sql.splitlines()[line_no - 1] if sql.splitlines() else sql
        text = f"{e.diag.message_primary} at line {line_no}: {line.strip()}"
    return StepFailed(f"step {ctx.name!r}: SQL error: {text}")


def fetch_postgres(ctx: StepContext, conn: Connection, table: str, query: str) -> int:
    target = ctx.scratch / f"{table}.csv"
    with pg_connect(ctx, conn) as pg, pg.cursor() as cur:
        try:
            cur.execute(f"SELECT * FROM ({query}) AS q LIMIT 0")
            columns = []
            for col in cur.description or []:
                info = pg.adapters.types.get(col.type_code)
                columns.append((col.name, PG_TYPES.get(info.name if info else "", "VARCHAR")))
            with target.open("wb") as out, cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
                for chunk in copy:
                    out.write(chunk)
        except psycopg.Error as e:
            raise sql_error(ctx, e, query) from e
    spec = "{" + ", ".join(f"{literal(n)}: {literal(t)}" for n, t in columns) + "}"
    return ctx.write_query(
        table,
        f"SELECT * FROM read_csv({literal(str(target))}, columns={spec}, header=false, auto_detect=false, "
        "delim=',', quote='\"', escape='\"', nullstr='', allow_quoted_nulls=false)",
    )


def fetch_sqlite(ctx: StepContext, conn: Connection, table: str, query: str) -> int:
    target = ctx.scratch / f"{table}.parquet"
    path = conn.path
    if not Path(path).is_file():
        raise StepFailed(f"step {ctx.name!r}: connection {conn.name!r}: no SQLite file at {path}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        cur = db.execute(query)
        names = [d[0] for d in cur.description]
        while batch := cur.fetchmany(50_000):
            data = pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in batch])
            if writer is None:
                writer = pq.ParquetWriter(target, data.schema)
            writer.write_table(data.cast(writer.schema))
            rows += len(batch)
    except sqlite3.Error as e:
        raise StepFailed(f"step {ctx.name!r}: SQL error in SQLite {path}: {e}") from e
    finally:
        db.close()
        if writer is not None:
            writer.close()
    if writer is None:
        pq.write_table(pa.table({name: pa.array([], pa.string()) for name in names}), target)
    ctx.add_output(table, target, rows)
    return rows


def fetch_duckdb(ctx: StepContext, conn: Connection, table: str, query: str) -> int:
    if not Path(conn.path).is_file():
        raise StepFailed(f"step {ctx.name!r}: connection {conn.name!r}: no DuckDB file at {conn.path}")
    con = ctx.duckdb
    con.execute(f"ATTACH IF NOT EXISTS {literal(conn.path)} AS source (READ_ONLY)")
    con.execute("USE source")
    try:
        return ctx.write_query(table, query)
    finally:
        con.execute("USE work")


def filesystem(ctx: StepContext, conn: Connection | None, url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The file system and path of a URL, or of a path relative to a file-like connection."""
    try:
        if conn is not None and conn.scheme == "sftp":
            # fsspec's own paramiko-based class, by name: installing sshfs re-registers "sftp".
            from fsspec.implementations.sftp import SFTPFileSystem

            fs = SFTPFileSystem(**conn.storage_options())
            return fs, url if url.startswith("/") else f"{conn.base_url().rstrip('/')}/{url}"
        if conn is not None:
            base = conn.base_url().rstrip("/")
            full = f"{base}/{url.lstrip('/')}" if url else base
            return fsspec.core.url_to_fs(full, **conn.storage_options())  # type: ignore[no-any-return]
        options: dict[str, Any] = {}
        if "://" not in url and not url.startswith("/") and ctx.environ.get("DATAWORKS_PIPELINE_DIR"):
            url = str(Path(ctx.environ["DATAWORKS_PIPELINE_DIR"]) / url)  # relative to the pipeline file
        if url.startswith(("http://", "https://")):
            import aiohttp  # only http needs it, and it is slow to import

            options["client_kwargs"] = {"timeout": aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT)}
        return fsspec.core.url_to_fs(url, **options)  # type: ignore[no-any-return]
    except (OSError, TimeoutError) as e:
        where = conn.host if conn else url
        raise StepFailed(f"step {ctx.name!r}: cannot reach {where}: {e or type(e).__name__}") from e
    except Exception as e:  # paramiko's and botocore's own errors: report, never crash
        where = f"{conn.host} (connection {conn.name!r})" if conn else url
        raise StepFailed(f"step {ctx.name!r}: cannot open {where}: {type(e).__name__}: {e}") from e


def list_files(ctx: StepContext, fs: fsspec.AbstractFileSystem, path: str, host: str) -> list[str]:
    """The files a path names: one file, a glob, or every file under a prefix."""
    try:
        if any(c in path for c in "*?["):
            files = sorted(fs.glob(path))
        elif path.endswith("/") or (not path.startswith("http") and fs.isdir(path)):
            files = sorted(f for f in fs.find(path) if not PurePosixPath(f).name.startswith((".", "_")))
        else:
            files = [path]
    except (OSError, TimeoutError) as e:
        raise StepFailed(f"step {ctx.name!r}: cannot list {path} on {host}: {e or type(e).__name__}") from e
    if not files:
        raise StepFailed(f"step {ctx.name!r}: no files match {path} on {host}")
    return [str(f) for f in files]


def file_format(ctx: StepContext, name: str) -> str:
    fmt = ctx.config.get("format")
    if fmt:  # one of core.pipelines.stepconfigs.FETCH_FORMATS: checked before the step started
        return str(fmt)
    suffixes = [s for s in PurePosixPath(name.split("?", maxsplit=1)[0]).suffixes if s not in {".gz", ".zst"}]
    found = FORMATS.get(suffixes[-1].lower()) if suffixes else None
    if found is None:
        raise ctx.fail("format", f"cannot tell the format of {name}; set format: csv, json, jsonl or parquet")
    return found


def reader(ctx: StepContext, fmt: str, files: list[str]) -> str:
    """The DuckDB table function that reads the (local) files."""
    paths = "[" + ", ".join(literal(f) for f in files) + "]"
    if fmt == "csv":
        opts = ["header=true" if ctx.config.get("header", True) else "header=false", "strict_mode=true"]
        opts.append(f"delim={literal(csv_delimiter(ctx, files[0]))}")
        return f"read_csv({paths}, {', '.join(opts)})"
    if fmt == "json":
        return f"read_json({paths}, format='auto')"
    if fmt == "jsonl":
        return f"read_json({paths}, format='newline_delimited')"
    return f"read_parquet({paths})"


def csv_delimiter(ctx: StepContext, name: str) -> str:
    return str(ctx.config.get("delimiter") or ("\t" if name.endswith((".tsv", ".tsv.gz")) else ","))


def csv_problem(path: str, delimiter: str) -> str | None:
    """The first line of a CSV whose field count differs from its header's (DuckDB's sniffer
    reports a dialect failure instead when the bad line falls in its sample)."""
    if path.endswith((".gz", ".zst")):
        return None
    with open(path, newline="", errors="replace") as f:
        rows = csv.reader(f, delimiter=delimiter, strict=True)
        try:
            header = next(rows, [])
            for row in rows:
                if len(row) != len(header):
                    return f"line {rows.line_num} has {len(row)} fields, the header has {len(header)}"
        except csv.Error as e:
            return f"line {rows.line_num}: {e}"
    return None


def openssh_get(ctx: StepContext, conn: Connection, files: list[str], local: list[str]) -> bool:
    """Download with OpenSSH's `sftp` client when the connection authenticates with a key file.

    OpenSSH moves data about twice as fast as paramiko (benchmarks/bench_worker.py); paramiko
    still lists the files and serves password logins. False when this path does not apply.
    The server's key must be the connection's host_key if it pins one (worker/hostkeys.py).
    """
    options = conn.storage_options()
    client = shutil.which("sftp")
    if not options.get("key_filename") or client is None or not files:
        return False
    targets = [ctx.scratch / "download" / f"{n:05d}-{PurePosixPath(f).name}" for n, f in enumerate(files)]
    targets[0].parent.mkdir(parents=True, exist_ok=True)
    from dataworks.worker import hostkeys  # paramiko: only sftp pays its import

    pinned = hostkeys.parse(conn.host_key, conn.name) if conn.host_key else None
    batch = "".join(f'get "{f}" "{t}"\n' for f, t in zip(files, targets, strict=True))
    argv = [
        client,
        "-o",
        "LogLevel=ERROR",  # not -q: that hides "Host key verification failed" too
        "-b",
        "-",
        "-i",
        str(options["key_filename"]),
        "-P",
        str(options["port"]),
        "-o",
        "BatchMode=yes",
        *hostkeys.openssh_options(pinned, str(options["host"]), int(options["port"]), ctx.scratch),
        "-o",
        f"ConnectTimeout={int(options.get('timeout', CONNECT_TIMEOUT))}",
        f"{options['username']}@{options['host']}",
    ]
    done = subprocess.run(argv, input=batch, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        if pinned is not None:
            why = hostkeys.openssh_refusal(done.stderr, conn.host, pinned) or why
        raise StepFailed(
            f"step {ctx.name!r}: cannot download from {conn.host} (connection {conn.name!r}): {why}"
        )
    accepted = hostkeys.learned(ctx.scratch) if pinned is None else None
    if accepted is not None:
        hostkeys.unverified(conn.host, *accepted)
    local.extend(str(t) for t in targets)
    ctx.progress(1.0)
    return True


def _one_sftp_file(conn: Connection | None, url: str) -> str | None:
    """The remote path when an sftp fetch names one file (no glob, no trailing /): then no listing
    is needed, and OpenSSH's client can fetch it without a paramiko session first."""
    if conn is None or conn.scheme != "sftp" or any(c in url for c in "*?[") or url.endswith("/") or not url:
        return None
    return url if url.startswith("/") else f"{conn.base_url().rstrip('/')}/{url}"


def fetch_files(ctx: StepContext, table: str, url: str, conn: Connection | None = None) -> int:
    local: list[str] = []
    single = _one_sftp_file(conn, url)
    if conn is not None and single is not None and openssh_get(ctx, conn, [single], local):
        return _read_local(ctx, table, local, file_format(ctx, single))
    fs, path = filesystem(ctx, conn, url)
    host = conn.host if conn else (url.split("://", 1)[1].split("/", 1)[0] if "://" in url else "local disk")
    files = list_files(ctx, fs, path, host)
    fmt = file_format(ctx, files[0])
    total = sum(int(fs.size(f) or 0) for f in files) if len(files) > 1 else 0
    done = 0
    if conn is not None and conn.scheme == "sftp" and openssh_get(ctx, conn, files, local):
        files = []  # OpenSSH's client fetched them all
    for n, f in enumerate(files):
        if isinstance(fs, LocalFileSystem):
            local.append(f)
            continue
        target = ctx.scratch / "download" / f"{n:05d}-{PurePosixPath(f).name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            fs.get_file(f, str(target))
        except Exception as e:  # any client library's error becomes a step error naming the host
            raise StepFailed(
                f"step {ctx.name!r}: cannot download {f} from {host}: {type(e).__name__}: {e}"
            ) from e
        local.append(str(target))
        done += target.stat().st_size
        ctx.progress(done / total if total else (n + 1) / len(files))
    return _read_local(ctx, table, local, fmt)


def _read_local(ctx: StepContext, table: str, local: list[str], fmt: str) -> int:
    """Turn the downloaded (or local) files into this step's output table."""
    if fmt == "parquet" and not ctx.config.get("columns"):
        rows = 0
        for n, f in enumerate(local):  # parquet in, parquet out: publish the files as they are
            count = pq.read_metadata(f).num_rows
            part = ctx.scratch / f"{table}-passthrough-{n}.parquet"
            if f.startswith(str(ctx.scratch)):
                os.replace(f, part)
            else:  # a copy, never a link: later edits to the source must not change the output
                shutil.copyfile(f, part)
            ctx.add_output(table, part, count)
            rows += count
        return rows
    columns = ", ".join(quote(c) for c in ctx.config.get("columns") or []) or "*"
    try:
        return ctx.write_query(table, f"SELECT {columns} FROM {reader(ctx, fmt, local)}")
    except StepFailed as e:
        if fmt == "csv":
            for f in local:
                if problem := csv_problem(f, csv_delimiter(ctx, f)):
                    raise StepFailed(f"step {ctx.name!r}: corrupt CSV {f}: {problem}") from e
        raise
