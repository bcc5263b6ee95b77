"""Pre-validation and the worker refuse the same step configurations, with the same words.

For each built-in step type, a table of invalid configurations goes through both
the pipeline validation that runs before any Job (core.validation) and the
worker's own check of the step file the operator would ship (worker.main.load_step,
exit code 2); both must refuse each one with the same message. A table of valid
configurations must pass both. Every invalid entry is one the worker used to
refuse (or crash on) only at run time, after its upstream steps had run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dataworks.api import pipeline as api
from dataworks.core.pipelines import validation
from dataworks.core.pipelines.steps import StepDef
from dataworks.manifests import jobs as manifests
from dataworks.worker import main as worker
from dataworks.worker.errors import StepFailed

INVALID: dict[str, list[tuple[dict[str, Any], str]]] = {
    "fetch": [
        ({}, "config.source: a fetch step needs a source connection, url or path"),
        ({"query": "SELECT 1"}, "config.source: a fetch step needs a source connection, url or path"),
        (
            {"path": "a.csv", "format": "xlsx"},
            "config.format: 'xlsx' is not one of csv, json, jsonl, parquet",
        ),
        ({"source": "db", "tables": 5}, "config.tables: must be a table name or a list of them, got 5"),
        ({"path": "a.csv", "columns": "id"}, "config.columns: must be a list of column names, got 'id'"),
    ],
    "transform": [
        (
            {"sql": "SELECT 1", "values": ["SELECT 1"]},
            "config.values: must map output names to SQL queries, e.g. {late: SELECT count(*) FROM t}",
        ),
        (
            {"sql": "SELECT 1", "values": {"late-orders": "SELECT 1"}},
            "config.values.late-orders: an output name is a letter or _, then letters, digits or _",
        ),
        (
            {"sql": "SELECT 1", "values": {"rows": "SELECT 1"}},
            "config.values.rows: is reported by every step; choose another name than rows",
        ),
        (
            {"sql": "SELECT 1", "values": {"late": " "}},
            "config.values.late: must be a SQL query whose first value is the output",
        ),
        ({}, "config.sql: is required for a transform step"),
        ({"sql": "   "}, "config.sql: is required for a transform step"),
        ({"sql": "SELECT 1", "engine": "spark"}, "config.engine: 'spark' is not one of duckdb, postgres"),
        ({"sql": "SELECT 1", "engine": "postgres"}, "config.connection: engine: postgres needs a connection"),
        ({"sql": "SELECT 1", "output": 3}, "config.output: must be a table name or a list of them, got 3"),
    ],
    "load": [
        ({}, "config.destination: is required for a load step"),
        ({"destination": "bigquery"}, "config.destination: 'bigquery' is not supported"),
        ({"destination": "file"}, "config.url: a file load needs url: or path:"),
        ({"destination": "file", "path": "out/orders.xlsx"}, "config.format: cannot tell the format of"),
        ({"destination": "file", "path": "out/", "format": "avro"}, "config.format: 'avro' is not one of"),
        ({"destination": "postgres"}, "config.connection: a postgres load names its connection"),
        ({"destination": "postgresql://h/db"}, "config.connection: a postgres load names its connection"),
        ({"destination": "postgres", "connection": "wh", "mode": "merge"}, "config.mode: 'merge' is not one"),
        ({"destination": "postgres", "connection": "wh", "mode": "upsert"}, "config.key: mode upsert needs"),
        ({"destination": "duckdb"}, "config.path: a duckdb load needs path:"),
    ],
    "quality-check": [
        ({}, "config.rules: needs a list of rules"),
        ({"rules": "not_null: id"}, "config.rules: needs a list of rules"),
        ({"rules": [{"no_such_rule": ["x"]}]}, "config.rules[0]: must name exactly one rule of not_null"),
        ({"rules": ["not_null"]}, "config.rules[0]: must be an object such as {not_null: column}"),
        ({"rules": [{"not_null": "id", "unique": "id"}]}, "config.rules[0]: must name exactly one rule"),
        ({"rules": [{"not_null": "id", "severity": "fatal"}]}, "config.rules[0].severity: 'fatal' is not"),
        ({"rules": [{"not_null": []}]}, "config.rules[0]: not_null needs a column"),
        ({"rules": [{"accepted_values": {"column": "s"}}]}, "config.rules[0]: accepted_values needs values"),
        ({"rules": [{"row_count": {"min": "many"}}]}, "config.rules[0].min: must be a whole number"),
        ({"rules": [{"row_count": {}}]}, "config.rules[0]: row_count needs min:, max: or both"),
        ({"rules": [{"range": {"column": "x", "max": "high"}}]}, "config.rules[0].max: must be a number"),
        ({"rules": [{"freshness": {"column": "t", "max_age": "1 day"}}]}, "config.rules[0].max_age:"),
        ({"rules": [{"not_null": "id"}, {"sql": " ; "}]}, "config.rules[1]: sql needs a query"),
    ],
    "fan-out": [
        ({}, "config.sql: a fan-out step needs `sql`, `script` or `command`"),
        ({"sql": "SELECT 1", "chunk_strategy": "random"}, "config.chunk_strategy: 'random' is not one of"),
        ({"script": 42}, "config.script: must be a command line or a list of arguments, got 42"),
        ({"sql": "SELECT 1", "key": {"a": 1}}, "config.key: must be a column name or a list of them"),
    ],
}

VALID: dict[str, list[dict[str, Any]]] = {
    "fetch": [
        {"path": "data/orders.csv"},
        {"source": "db", "query": "SELECT 1"},
        {"url": "https://example.com/e.json", "format": "json"},
        {
            "source": "db",
            "tables": ["orders", "customers"],
            "columns": ["id"],
            "partition_date": "2024-01-15",
        },
        {"source": "partner_sftp", "glob": "exports/*.csv"},
    ],
    "transform": [
        {"sql": "SELECT 1"},
        {"sql": "transform.sql", "output": ["a", "b"]},
        {"sql": "SELECT 1", "engine": "postgres", "connection": "wh"},
    ],
    "load": [
        {"destination": "file", "path": "out/"},
        {"destination": "file", "url": "s3://bucket/orders.csv"},
        {"destination": "file", "connection": "lake"},
        {"destination": "s3://bucket/prefix/"},
        {"destination": "postgres", "connection": "wh", "mode": "upsert", "key": ["id"]},
        {"destination": "duckdb", "path": "w.duckdb", "mode": "overwrite"},
        {"destination": "sqlite", "connection": "db"},
    ],
    "quality-check": [
        {
            "rules": [
                {"not_null": ["order_id", "customer_id"]},
                {"unique": "order_id"},
                {"accepted_values": {"column": "status", "values": ["new", "paid"]}},
                {"row_count": {"min": 1, "max": 1000000}},
                {"range": {"column": "total", "min": 0}},
                {"freshness": {"column": "created_at", "max_age": "24h"}},
                {"sql": "SELECT * FROM orders WHERE false", "name": "never", "severity": "warn"},
            ]
        },
        {"rules": [{"rule": "not_null", "column": "id"}], "table": "orders"},
    ],
    "fan-out": [
        {"sql": "SELECT * FROM chunk", "parallelism": 4},
        {"script": "python analyze.py", "chunk_strategy": "size-based"},
        {"command": ["python", "a.py"], "key": ["a", "b"], "chunk_strategy": "hash-based"},
    ],
}


def pre_validation(type_: str, config: dict[str, Any]) -> str:
    """What validation says before any Job exists ("" when it accepts)."""
    _, errors = validation.validate_raw({"steps": [{"name": "s", "type": type_, "config": config}]})
    return "; ".join(str(e) for e in errors)


def worker_check(type_: str, config: dict[str, Any], tmp_path: Path) -> str:
    """What the worker says of the step file the operator would ship ("" when it accepts)."""
    step = StepDef(name="s", type=type_, depends_on=(), config=config)
    owner = manifests.Owner(info=api.INFO, name="p", namespace="ns", uid="u")
    path = tmp_path / "s.json"
    path.write_text(manifests.steps_config_map(owner, (step,))["data"]["s.json"])
    try:
        worker.load_step(str(path))
    except StepFailed as e:
        return f"{e} (exit {e.exit_code})"
    return ""


CASES = [(t, config, message) for t, rows in INVALID.items() for config, message in rows]


@pytest.mark.parametrize(
    ("type_", "config", "message"), CASES, ids=[f"{c[0]}-{n}" for n, c in enumerate(CASES)]
)
def test_invalid_configs_are_refused_by_both_with_the_same_message(
    type_: str, config: dict[str, Any], message: str, tmp_path: Path
) -> None:
    before = pre_validation(type_, config)
    assert f"step 's': {message}" in before, before
    assert worker_check(type_, config, tmp_path) == f"{before} (exit 2)"


VALID_CASES = [(t, config) for t, rows in VALID.items() for config in rows]


@pytest.mark.parametrize(
    ("type_", "config"), VALID_CASES, ids=[f"{c[0]}-{n}" for n, c in enumerate(VALID_CASES)]
)
def test_valid_configs_pass_both(type_: str, config: dict[str, Any], tmp_path: Path) -> None:
    assert pre_validation(type_, config) == ""
    assert worker_check(type_, config, tmp_path) == ""


def test_every_built_in_type_has_both_tables() -> None:
    assert set(INVALID) == set(VALID) == set(worker.RUNNERS)
