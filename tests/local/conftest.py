"""Fixtures of the services tier: real servers, and a worker run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.local import processes, services


@pytest.fixture(autouse=True)
def _no_consumer_outlives_its_test() -> Iterator[None]:
    yield
    processes.reap()


@pytest.fixture(scope="session")
def pg() -> Iterator[services.Postgres]:
    with services.postgres() as server:
        yield server


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Sftp]:
    with services.sftp(tmp_path_factory.mktemp("sftp")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Redis]:
    with services.redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Kafka]:
    with services.kafka(tmp_path_factory.mktemp("kafka")) as server:
        yield server


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with services.s3() as endpoint:
        yield endpoint


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@dataclass
class Workspace:
    """A store and pipeline folder for running worker steps as real processes."""

    root: Path
    env: dict[str, str]

    @property
    def store(self) -> Path:
        return self.root / "store"

    def run(self, step: dict[str, Any], *, index: int = 0, total: int = 1, timeout: float = 120) -> Result:
        path = self.root / "steps" / f"{step['name']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"dependsOn": [], "config": {}, **step}))
        env = {**os.environ, **self.env, "WORKER_INDEX": str(index), "TOTAL_WORKERS": str(total)}
        out = subprocess.run(  # noqa: PLW1510 (the exit code is the result)
            [sys.executable, "-m", "dataworks.worker", "--step-file", str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
        )
        return Result(out.returncode, out.stdout, out.stderr)

    def ok(self, step: dict[str, Any], **kw: Any) -> Result:
        result = self.run(step, **kw)
        assert result.code == 0, f"step {step['name']} failed ({result.code}):\n{result.stderr}"
        return result

    def step_dir(self, step: str) -> Path:
        return self.store / "test" / "p" / "r1" / step

    def committed(self, step: str) -> bool:
        return (self.step_dir(step) / "_manifest").is_dir() and any(
            (self.step_dir(step) / "_manifest").glob("*.json")
        )

    def rows(self, step: str, table: str | None = None, order: str = "") -> list[tuple[Any, ...]]:
        manifests = sorted((self.step_dir(step) / "_manifest").glob("*.json"))
        files: list[str] = []
        for m in manifests:
            tables = json.loads(m.read_text())["tables"]
            info = tables[table] if table else next(iter(tables.values()))
            files += [f if f.startswith("/") else str(self.step_dir(step) / f) for f in info["files"]]
        if not files:
            return []
        listing = ", ".join(f"'{f}'" for f in files)
        query = f"SELECT * FROM read_parquet([{listing}])" + (f" ORDER BY {order}" if order else "")
        return duckdb.sql(query).fetchall()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(
        tmp_path,
        {
            "DATAWORKS_STORE": f"file://{tmp_path / 'store'}",
            "DATAWORKS_NAMESPACE": "test",
            "DATAWORKS_PIPELINE": "p",
            "DATAWORKS_RUN": "r1",
            "DATAWORKS_PIPELINE_DIR": str(tmp_path),
        },
    )
