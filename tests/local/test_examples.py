"""Every local example runs end to end; the PostgreSQL ones against the test-started server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.local import services

ROOT = Path(__file__).resolve().parents[2]
CTL = str(Path(sys.executable).parent / "pipeline-ctl")


@pytest.fixture
def shop(pg: services.Postgres) -> services.Postgres:
    pg.psql("DROP DATABASE IF EXISTS shop", db="postgres")
    pg.psql("CREATE DATABASE shop", db="postgres")
    subprocess.run(
        [
            "psql",
            pg.uri("shop"),
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            str(ROOT / "examples" / "local" / "seed.sql"),
        ],
        check=True,
        capture_output=True,
    )
    return pg


def run(example: str, cwd: Path, env: dict[str, str], *args: str) -> dict[str, object]:
    out = subprocess.run(  # noqa: PLW1510 (checked below, with the output in the message)
        [CTL, "run", "--local", str(ROOT / "examples" / example), *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    status = subprocess.run(
        [CTL, "status", "--local", "-o", "json"], cwd=cwd, capture_output=True, text=True, check=True
    )
    return dict(json.loads(status.stdout))


def test_marketing_q1_analysis(shop: services.Postgres, tmp_path: Path) -> None:
    st = run("local/marketing-q1-analysis.yaml", tmp_path, {"DATAWORKS_CONN_CAMPAIGNS_DB": shop.uri("shop")})
    assert st["phase"] == "Completed"
    run_dir = next((tmp_path / ".dataworks" / "runs").iterdir())
    manifests = sorted(run_dir.glob("store/**/generate-insights/_manifest/*.json"))
    assert len(manifests) == 5
    rows = sum(json.loads(m.read_text())["tables"]["generate-insights"]["rows"] for m in manifests)
    pairs = shop.psql(
        "SELECT count(DISTINCT (u.segment, c.channel)) FROM campaigns c JOIN users u ON c.user_id = u.id "
        "WHERE quarter = 'Q1' AND year = 2024",
        db="shop",
    )
    assert rows == int(pairs)  # every (segment, channel) pair, each on exactly one worker (hash of segment)


def test_daily_production_etl(shop: services.Postgres, tmp_path: Path) -> None:
    env = {"DATAWORKS_CONN_PRODUCTION_DB": shop.uri("shop")}
    st = run("local/daily-etl.yaml", tmp_path, env, "--param", "day=2024-01-15")
    assert st["phase"] == "Completed"
    got = shop.psql("SELECT count(*), sum(orders) FROM daily_aggregates", db="shop")
    expected = shop.psql(
        "SELECT count(DISTINCT c.country), count(*) FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE o.partition_date = '2024-01-15' AND o.total_amount >= 0",
        db="shop",
    )
    assert got == expected
    # a second run of the same day upserts: the table keeps one row per (country, day)
    run("local/daily-etl.yaml", tmp_path, env, "--param", "day=2024-01-15")
    assert shop.psql("SELECT count(*), sum(orders) FROM daily_aggregates", db="shop") == expected


def test_conditional_steps(tmp_path: Path) -> None:
    st = run("conditional.yaml", tmp_path, {})
    assert st["phase"] == "Completed"
    by = {s["name"]: s for s in st["steps"]}  # type: ignore[union-attr]
    assert {n: s["phase"] for n, s in by.items()} == {
        "extract": "Completed",
        "check": "Completed",
        "publish": "Skipped",
        "quarantine": "Completed",
        "notify": "Completed",  # publish says onSkipped: run, and notify runs without its output
        "full-refresh": "Skipped",
    }
    assert by["check"]["outputs"]["result"] == "warned"
    assert by["extract"]["outputs"]["rows"] == 3000
    assert by["extract"]["outputs"]["negative_totals"] == 30  # declared in config.values
    assert by["quarantine"]["outputs"]["rows"] == 30  # the orders with a negative total
    assert by["full-refresh"]["message"].startswith(
        'when: gb(steps["extract"].outputs.bytes) >= 10.0 is false'
    )


def test_a_pipeline_that_waits_for_another(tmp_path: Path) -> None:
    out = subprocess.run(
        [CTL, "run", "--local", str(ROOT / "examples" / "daily-report.yaml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode != 0
    assert "waits for pipelineDependencies: pipeline orders-nightly does not exist" in out.stderr
    run("conditional.yaml", tmp_path, {})
    st = run("daily-report.yaml", tmp_path, {})
    assert st["phase"] == "Completed"


def test_every_example_is_run_by_a_test() -> None:
    """The examples tree holds only resources some test runs (the cluster tests run examples/seed,
    examples/sequentialjob, examples/jobhandler, examples/training and the StreamingJob in
    examples/streams; tests/local/test_generate.py runs examples/streams/market-day.yaml)."""
    ran = {
        "quickstart.yaml",
        "conditional.yaml",
        "template.yaml",  # tests/local/test_templates.py, and seed/standard-etl.yaml there and on a cluster
        "seed/standard-etl.yaml",
        "scheduled.yaml",  # tests/cluster/test_scheduledpipelines.py
        "daily-report.yaml",
        "local/marketing-q1-analysis.yaml",
        "local/daily-etl.yaml",
        "seed/marketing-q1-analysis.yaml",
        "seed/production-etl-2024-01-15.yaml",
        "sequentialjob/data-processing-pipeline.yaml",
        "jobhandler/nightly-export.yaml",
        "training/test-job.yaml",
        "training/trainingjob-simple.yaml",  # tests/cluster/test_trainingjobs.py, with the next two
        "training/trainingjob-distributed.yaml",
        "training/trainingjob-gpu.yaml",
        "streams/market-day.yaml",  # tests/local/test_generate.py
        "streams/streamingjob.yaml",  # tests/cluster/test_streamingjobs.py
        "streams/kafka-streamingjob.yaml",  # tests/local/test_streamingjob_kafka_local.py, and on a cluster
        "streams/kafka-sasl-streamingjob.yaml",  # tests/cluster/test_streamingjobs_kafka.py
        "streams/alert-streamingjob.yaml",  # tests/cluster/test_streamingjobs_alerts.py
        "streams/container-streamingjob.yaml",  # tests/cluster/test_streamingjobs_container.py
    }
    found = {str(p.relative_to(ROOT / "examples")) for p in (ROOT / "examples").rglob("*.yaml")}
    assert found == ran
