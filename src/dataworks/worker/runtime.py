"""What every step type runs inside (edge layer): the step context.

A `StepContext` carries the step definition, the worker's index, the store
and the connections. It opens DuckDB (spilling to the scratch directory, so
inputs larger than memory stream), exposes upstream outputs as tables, turns
query results into parquet parts, reports progress as `PROGRESS: NN.N%` lines
and commits the output at the very end.
"""

from __future__ import annotations

import contextlib
import decimal
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from dataworks.worker import connections
from dataworks.worker.errors import StepFailed
from dataworks.worker.storing import Location, Store, TableOutput


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def primary(inputs: dict[str, TableOutput]) -> dict[str, TableOutput]:
    """Each input once, under its own table name (not the step-name aliases)."""
    seen: dict[int, str] = {}
    for name, out in inputs.items():
        seen.setdefault(id(out), name)
    return {name: inputs[name] for name in seen.values()}


def only_input(ctx: StepContext, inputs: dict[str, TableOutput], field_: str) -> tuple[str, TableOutput]:
    """The input named by config.<field_>, or the only input there is."""
    wanted = ctx.config.get(field_)
    if wanted is not None:
        if str(wanted) not in inputs:
            names = ", ".join(sorted(primary(inputs))) or "none"
            raise ctx.fail(field_, f"no upstream table {wanted!r}; inputs are {names}")
        return str(wanted), inputs[str(wanted)]
    tables = primary(inputs)
    if len(tables) != 1:
        raise ctx.fail(
            field_, f"name the upstream table to use (inputs: {', '.join(sorted(tables)) or 'none'})"
        )
    return next(iter(tables.items()))


def sql_name(name: str) -> str:
    """The unquoted-SQL-friendly alias of a step name: `join-user-data` -> `join_user_data`."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _plain(value: Any) -> Any:
    """A query's value as JSON has it: numbers, text, booleans, null; anything else as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@dataclass
class Summary:
    rows_in: int = 0
    rows_out: int = 0
    bytes_out: int = 0
    files: int = 0
    started: float = field(default_factory=time.monotonic)
    values: dict[str, Any] = field(default_factory=dict)  # what a step declares, e.g. result

    def outputs(self) -> dict[str, Any]:
        """The step's outputs, as its termination message carries them (core.pipelines.outputs)."""
        seconds = round(time.monotonic() - self.started, 3)
        return {
            "rows": self.rows_out,
            "rowsIn": self.rows_in,
            "bytes": self.bytes_out,
            "files": self.files,
            "durationSeconds": seconds,
            **self.values,
        }

    def line(self, step: str, index: int, total: int) -> str:
        who = f"step {step}" + (f" worker {index}/{total}" if total > 1 else "")
        seconds = time.monotonic() - self.started
        return (
            f"{who}: ok, rows in {self.rows_in}, rows out {self.rows_out}, "
            f"{human_bytes(self.bytes_out)} written, {seconds:.2f}s"
        )


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


class StepContext:
    """One run of one step (or one fan-out worker)."""

    def __init__(
        self,
        step: dict[str, Any],
        *,
        store: Store,
        where: Location,
        index: int = 0,
        total: int = 1,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.step = step
        self.name: str = step["name"]
        self.type: str = step["type"]
        self.config: dict[str, Any] = dict(step.get("config") or {})
        # Upstream steps whose outputs are inputs here ("inputs" leaves out container steps).
        self.store, self.where, self.index, self.total = store, where, index, total
        self.environ = dict(os.environ if environ is None else environ)
        # Upstream steps that ended without output (skipped with onSkipped: run, or failed with
        # onFailure: continue) are not inputs of this run.
        absent = set(filter(None, self.environ.get("DATAWORKS_ABSENT_INPUTS", "").split(",")))
        self.depends_on: list[str] = [
            d for d in step.get("inputs", step.get("dependsOn")) or [] if d not in absent
        ]
        self.summary = Summary()
        self.scratch = store.scratch(where, self.name, index)
        self.outputs: dict[str, tuple[list[Path], int]] = {}
        self.passthrough: dict[str, TableOutput] = {}
        self.extra: dict[str, Any] = {}
        self.children: list[subprocess.Popen[bytes]] = []  # scripts to stop on SIGTERM
        self._last_progress = -1.0
        self._duckdb: duckdb.DuckDBPyConnection | None = None

    # -- helpers -------------------------------------------------------------
    def connection(self, name: str) -> connections.Connection:
        return connections.resolve(name, self.name, self.environ)

    def progress(self, fraction: float) -> None:
        """Print `PROGRESS: NN.N%` when it moved by at least a percent (and at 100%)."""
        pct = max(0.0, min(100.0, fraction * 100))
        if pct - self._last_progress >= 1.0 or (pct == 100.0 and self._last_progress < 100.0):
            self._last_progress = pct
            print(f"PROGRESS: {pct:.1f}%", flush=True)

    def log(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def fail(self, field_: str, message: str) -> StepFailed:
        return StepFailed(f"step {self.name!r}: config.{field_}: {message}")

    @property
    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB database in the scratch directory: big inputs spill to disk instead of failing."""
        if self._duckdb is None:
            con = duckdb.connect(str(self.scratch / "work.duckdb"))
            con.execute(f"SET temp_directory = {literal(str(self.scratch / 'spill'))}")
            con.execute("SET enable_progress_bar = false")  # the worker prints its own PROGRESS lines
            if limit := self.environ.get("DATAWORKS_MEMORY_LIMIT"):
                con.execute(f"SET memory_limit = {literal(limit)}")
            if threads := self.environ.get("DATAWORKS_THREADS"):
                con.execute(f"SET threads = {int(threads)}")
            if not self.store.local:
                con.register_filesystem(self.store.fs)
            self._duckdb = con
        return self._duckdb

    def interrupt(self) -> None:
        """Stop promptly (SIGTERM): cancel the running query and end child scripts."""
        if self._duckdb is not None:
            self._duckdb.interrupt()
        for child in self.children:
            if child.poll() is None:
                child.terminate()

    # -- inputs --------------------------------------------------------------
    def input_tables(self) -> dict[str, TableOutput]:
        """Every table of every upstream step, by the name SQL sees it under."""
        found: dict[str, TableOutput] = {}
        for dep in self.depends_on:
            tables = self.store.tables(self.where, dep)
            for table, out in tables.items():
                found[table] = out
            if len(tables) == 1:  # a step with one table is also known by its own name
                only = next(iter(tables.values()))
                found.setdefault(dep, only)
        for table, out in list(found.items()):
            found.setdefault(sql_name(table), out)
        self.summary.rows_in = sum({id(o): o.rows for o in found.values()}.values())
        return found

    def declared_values(self) -> dict[str, Any]:
        """`config.values: {name: SQL}`: each query's first value, over this step's tables (as
        written) and its inputs, in a DuckDB of its own."""
        declared = self.config.get("values") or {}
        if not declared:
            return {}
        con = duckdb.connect()
        try:
            seen = {t: o.files for t, o in self.input_tables().items()}
            seen.update({t: o.files for t, o in self.passthrough.items()})
            seen.update({t: [str(f) for f in files] for t, (files, _) in self.outputs.items()})
            for table, files in seen.items():
                if files:
                    listed = "[" + ", ".join(literal(str(f)) for f in files) + "]"
                    con.execute(f"CREATE VIEW {quote(table)} AS SELECT * FROM read_parquet({listed})")
            values: dict[str, Any] = {}
            for name, sql in declared.items():
                try:
                    row = con.execute(str(sql)).fetchone()
                except duckdb.Error as e:
                    raise self.fail(f"values.{name}", f"{type(e).__name__}: {e}") from e
                values[str(name)] = _plain(row[0] if row else None)
            return values
        finally:
            con.close()

    def register_inputs(self, *, materialize: bool = False) -> dict[str, TableOutput]:
        """Expose the inputs in DuckDB: views over parquet, or tables when a script will change them."""
        inputs = self.input_tables()
        con = self.duckdb
        made: dict[int, str] = {}
        for table, out in inputs.items():
            if not out.files:
                con.execute(f"CREATE OR REPLACE TABLE {quote(table)} (empty BOOLEAN)")
                continue
            files = "[" + ", ".join(literal(f) for f in out.files) + "]"
            if materialize and id(out) in made:
                con.execute(f"CREATE OR REPLACE VIEW {quote(table)} AS SELECT * FROM {quote(made[id(out)])}")
                continue
            kind = "TABLE" if materialize else "VIEW"
            con.execute(f"CREATE OR REPLACE {kind} {quote(table)} AS SELECT * FROM read_parquet({files})")
            made[id(out)] = table
        return inputs

    # -- outputs -------------------------------------------------------------
    def write_query(self, table: str, query: str) -> int:
        """Write a query's result as this worker's part of `table`; returns its row count."""
        target = self.scratch / f"{sql_name(table)}-{len(self.outputs)}.parquet"
        try:
            row = self.duckdb.execute(
                f"COPY ({query}) TO {literal(str(target))} (FORMAT parquet, COMPRESSION zstd)"
            ).fetchone()
        except duckdb.Error as e:
            raise StepFailed(f"step {self.name!r}: {type(e).__name__}: {e}") from e
        rows = int(row[0]) if row else 0
        self.add_output(table, target, rows)
        return rows

    def add_output(self, table: str, path: Path, rows: int) -> None:
        files, count = self.outputs.get(table, ([], 0))
        self.outputs[table] = ([*files, path], count + rows)
        self.summary.rows_out += rows
        self.summary.bytes_out += path.stat().st_size
        self.summary.files += 1

    def commit(self) -> dict[str, Any]:
        if self._duckdb is not None:
            self._duckdb.close()
            self._duckdb = None
        record = self.store.commit(
            self.where,
            step=self.name,
            index=self.index,
            total=self.total,
            tables=self.outputs,
            extra=self.extra,
            passthrough=self.passthrough,
        )
        self.store.discard(self.scratch)
        return record

    def abandon(self) -> None:
        if self._duckdb is not None:
            with contextlib.suppress(duckdb.Error):
                self._duckdb.close()
            self._duckdb = None
        self.store.discard(self.scratch)
