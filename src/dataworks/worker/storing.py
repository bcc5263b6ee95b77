"""The artifact store (edge layer): where steps put their output and find their inputs.

Layout, under any fsspec URL (`file://` by default):

    <store>/<namespace>/<pipeline>/<run>/<step>/
        <table>/part-<index>-<token>.parquet   data, one part per worker attempt
        _manifest/<index>.json                 the commit record of worker <index>

A worker writes its parts first and its manifest last; the manifest lists the
exact files of that attempt. A step's output exists only when all of its
workers' manifests do, and readers read only the files manifests list, so a
killed, retried or concurrent attempt never exposes a partial output.
On a local store parts are written beside their final place and renamed in;
the manifest is written to a temporary name and renamed (atomic on POSIX).
On object stores a PUT is atomic, so the manifest is simply written last.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataworks.worker.errors import StepFailed

if TYPE_CHECKING:
    import fsspec

MANIFESTS = "_manifest"
SCRATCH = "_tmp"


@dataclass
class TableOutput:
    files: list[str] = field(default_factory=list)  # relative to the step dir, or absolute URLs
    rows: int = 0


@dataclass(frozen=True)
class Location:
    """Which run of which pipeline: the store's first path components."""

    namespace: str
    pipeline: str
    run: str


class Store:
    """One artifact store, opened from its URL."""

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self._options = options or {}
        self._fs: fsspec.AbstractFileSystem | None = None
        # A local store needs no fsspec at all: importing it is a third of a worker's start-up.
        self.local = "://" not in self.url or self.url.startswith("file://")
        if self.local:
            self.root = os.path.abspath(self.url.removeprefix("file://")).rstrip("/")
        else:
            import fsspec

            self._fs, root = fsspec.core.url_to_fs(self.url, **self._options)
            self.root = str(root).rstrip("/")

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The store's fsspec file system (opened on first use)."""
        if self._fs is None:
            import fsspec

            self._fs = fsspec.core.url_to_fs(self.url, **self._options)[0]
        return self._fs

    def step_path(self, where: Location, step: str) -> str:
        return f"{self.root}/{where.namespace}/{where.pipeline}/{where.run}/{step}"

    def full_url(self, path: str) -> str:
        """A path as DuckDB and fsspec callers outside this store can open it."""
        if self.local:
            return path
        return self.fs.unstrip_protocol(path)  # type: ignore[no-any-return]

    def scratch(self, where: Location, step: str, index: int) -> Path:
        """A local directory for one attempt's files; on a local store, beside their final place."""
        if self.local:
            base = Path(self.step_path(where, step)) / SCRATCH
            while True:  # a sibling worker finishing may remove the empty base between the two calls
                base.mkdir(parents=True, exist_ok=True)
                try:
                    return Path(tempfile.mkdtemp(prefix=f"{index:05d}-", dir=base))
                except FileNotFoundError:
                    continue
        return Path(tempfile.mkdtemp(prefix=f"dataworks-{step}-{index:05d}-"))

    def commit(
        self,
        where: Location,
        *,
        step: str,
        index: int,
        total: int,
        tables: dict[str, tuple[list[Path], int]],
        extra: dict[str, Any] | None = None,
        passthrough: dict[str, TableOutput] | None = None,
    ) -> dict[str, Any]:
        """Publish one worker's local parquet files, then its manifest (the commit point)."""
        base = self.step_path(where, step)
        token = secrets.token_hex(4)
        record: dict[str, Any] = {"step": step, "index": index, "total": total, "tables": {}}
        for table, (files, rows) in tables.items():
            names = []
            for n, local in enumerate(files):
                rel = f"{table}/part-{index:05d}-{token}-{n}.parquet"
                target = f"{base}/{rel}"
                if self.local:
                    Path(target).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(local, target)
                else:
                    self.fs.put_file(str(local), target)
                names.append(rel)
            record["tables"][table] = {"files": names, "rows": rows}
        for table, out in (passthrough or {}).items():
            record["tables"][table] = {"files": out.files, "rows": out.rows}
        record.update(extra or {})
        body = json.dumps(record, indent=1, sort_keys=True).encode()
        manifest = f"{base}/{MANIFESTS}/{index:05d}.json"
        if self.local:
            Path(manifest).parent.mkdir(parents=True, exist_ok=True)
            tmp = f"{manifest}.{token}.tmp"
            with open(tmp, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, manifest)
        else:
            self.fs.pipe_file(manifest, body)
        return record

    def discard(self, scratch: Path) -> None:
        shutil.rmtree(scratch, ignore_errors=True)
        if self.local and scratch.parent.name == SCRATCH:
            with contextlib.suppress(OSError):  # only when no other attempt is using it
                scratch.parent.rmdir()

    def manifests(self, where: Location, step: str) -> list[dict[str, Any]]:
        """The committed manifests of a step; raises unless every worker committed."""
        folder = f"{self.step_path(where, step)}/{MANIFESTS}"
        try:
            if self.local:
                names = sorted(f"{folder}/{n}" for n in os.listdir(folder) if n.endswith(".json"))
            else:
                names = sorted(p for p in self.fs.ls(folder, detail=False) if str(p).endswith(".json"))
        except FileNotFoundError:
            names = []
        records = [json.loads(Path(n).read_bytes() if self.local else self.fs.cat_file(n)) for n in names]
        total = records[0]["total"] if records else None
        if not records or len(records) < int(total or 0):
            have = f"{len(records)} of {total} workers" if total else "nothing"
            raise StepFailed(f"input step {step!r} has no committed output ({have} committed) in {folder}")
        return records

    def tables(self, where: Location, step: str) -> dict[str, TableOutput]:
        """Each table an upstream step committed, with the full URLs of its files."""
        out: dict[str, TableOutput] = {}
        base = self.step_path(where, step)
        for record in self.manifests(where, step):
            for table, info in record.get("tables", {}).items():
                entry = out.setdefault(table, TableOutput())
                for f in info["files"]:
                    entry.files.append(f if "://" in f or f.startswith("/") else self.full_url(f"{base}/{f}"))
                entry.rows += int(info.get("rows", 0))
        return out
