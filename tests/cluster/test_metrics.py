"""The operator's /metrics, /healthz and /readyz after real pipelines ran: values, not just names."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.builders.net import free_port, wait_port
from tests.cluster.conftest import Cluster, Operator
from tests.cluster.pipelines import create, manifest, step, wait_phase


@pytest.fixture
def metered(operator: Operator, cluster: Cluster, tmp_path: Path) -> Iterator[str]:
    """The admin operator paused, and one with its HTTP port on: its base URL."""
    operator.stop()
    port = free_port()
    own = Operator(cluster.kubeconfig, tmp_path / "operator.log", "--health-port", str(port))
    own.start()
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        own.stop()
        operator.start()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_what_happened(metered: str, cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    assert get(f"{metered}/healthz")[0] == 200
    deadline = time.monotonic() + 30
    while get(f"{metered}/readyz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert get(f"{metered}/readyz") == (200, "ready\n")
    oom = {"outcome": "fail", "exit-code": "137", "reason": "OOMKilled"}
    create(cluster.client, namespace, manifest("ok", [step("a"), step("b", ["a"])]))
    create(cluster.client, namespace, manifest("oom", [step("big", fate=oom, retry={"limit": 0})]))
    wait_phase(cluster.client, namespace, "ok", "Completed")
    wait_phase(cluster.client, namespace, "oom", "Failed")
    time.sleep(0.5)
    status, text = get(f"{metered}/metrics")
    assert status == 200
    got = samples(text)

    def value(name: str, **labels: str) -> float:
        return got.get((name, frozenset(labels.items())), 0.0)

    assert value("pipeline_starts_total") == 2
    assert value("pipeline_duration_seconds_count", phase="Completed") == 1
    assert value("pipeline_duration_seconds_count", phase="Failed") == 1
    assert value("pipeline_step_failures_total", step_type="container", reason="OOMKilled") == 1
    assert value("pipeline_step_duration_seconds_count", step_type="container") == 2
    assert value("active_pipelines") == 0
    assert value("dataworks_kubernetes_api_requests_total", verb="POST", resource="jobs") >= 3
    assert value("dataworks_reconcile_duration_seconds_count", kind="Pipeline") >= 4
    assert value("dataworks_operator_build_info", version="0.1.0") == 1
    # StepStarted, StepCompleted x2 and PipelineCompleted; StepStarted, StepFailed, PipelineFailed
    assert value("dataworks_events_total", result="posted") >= 6
    assert ("dataworks_events_total", frozenset({("result", "failed")})) in got
    assert value("dataworks_events_total", result="failed") == 0
    assert not any(name.startswith("pipeline") and ("name", "ok") in labels for name, labels in got)
    # Structured logs: one JSON object per line, naming the pipeline, the step and the reconcile.
    records = [
        json.loads(line) for line in (tmp_path / "operator.log").read_text().splitlines() if line.strip()
    ]
    started = [r for r in records if r.get("reason") == "StepStarted" and r.get("pipeline") == "ok"]
    assert {r["step"] for r in started} == {"a", "b"}
    assert all(r["namespace"] == namespace and len(r["reconcile"]) == 8 for r in started)
    assert len({r["reconcile"] for r in started}) == 2  # two reconciles started the two steps
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian's prometheus package) is installed by .ci/run"
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
