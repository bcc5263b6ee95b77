"""The alert rules, the PrometheusRule, the dashboard and the monitoring overlay are consistent,
and promtool accepts the rules and their unit tests (Debian's prometheus package, from .ci/run)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from dataworks.observability.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: apt-get install prometheus (.ci/run does)"
    return subprocess.run([tool, *args], cwd=MONITORING, capture_output=True, text=True, check=False)


def exported() -> set[str]:
    """Every sample name the operator can export (with _total, _bucket, _info ... suffixes)."""
    metrics = Metrics(version="test")
    metrics.watch_requests(lambda: {("GET", "pipelines"): 1})
    metrics.started_at.labels("ns", "p").set(1)
    metrics.progressed_at.labels("ns", "p").set(1)
    metrics.step_failures.labels(step_type="fetch", reason="Error").inc()
    metrics.durations.labels(phase="Completed").observe(1)
    metrics.step_durations.labels(step_type="fetch").observe(1)
    metrics.reconcile_errors.labels(kind="Pipeline", error="X").inc()
    metrics.reconcile_seconds.labels(kind="Pipeline").observe(0.01)
    metrics.queue_depth.labels(kind="Pipeline").set(0)
    metrics.training.stalled.labels("ns", "tj").set(0)
    metrics.training.restarts.labels(cause="OOMKilled").inc()
    metrics.training.failed.labels(reason="OOMKilled").inc()
    metrics.training.completed.inc()
    t = metrics.training
    for gauge in (t.gpus, t.workers, t.progress, t.epoch, t.loss, t.accuracy):
        gauge.labels("ns", "tj").set(1)
    t.state.labels("ns", "tj", "Running").set(1)
    t.startup.observe(1)
    t.recovery.observe(1)
    t.duration.labels(state="Succeeded").observe(1)
    sj = metrics.streaming
    for g in (sj.lag, sj.pending, sj.arrival, sj.processing, sj.p99, sj.replicas, sj.desired, sj.max_replicas,
              sj.queue_delay_slo, sj.broker_up, sj.stalled):  # fmt: skip
        g.labels("ns", "stj").set(1)
    sj.strategy.labels("ns", "stj", "cost").set(1)
    sj.decisions.labels(reason="ScaleUp").inc()
    sj.reclaimed.inc()
    sj.anomaly.labels("ns", "stj", "LatencySpike").set(1)
    sj.anomalies.labels(type="LatencySpike", action="AddConsumer").inc()
    return {s.name for family in metrics.registry.collect() for s in family.samples}


def referenced(expr: str) -> set[str]:
    names = set(re.findall(r"\b([a-z_][a-z0-9_]*)\s*(?=[{\[)]|$|\s*[-+*/>]|\s*offset)", expr))
    prefixes = ("pipeline_", "dataworks_", "active_", "trainingjob_", "streamingjob_")
    return {n for n in names if n.startswith(prefixes)}


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    check = promtool("check", "rules", "rules.yaml")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "14 rules found" in check.stdout
    tested = promtool("test", "rules", "rules_test.yaml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_prometheus_rule_carries_exactly_the_tested_rules() -> None:
    rules = yaml.safe_load((MONITORING / "rules.yaml").read_text())
    crd = yaml.safe_load((MONITORING / "prometheus-rule.yaml").read_text())
    assert crd["kind"] == "PrometheusRule"
    assert crd["spec"] == rules
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert set(alerts) == {
        "PipelineStuck",
        "HighStepFailureRate",
        "PipelineDurationAnomaly",
        "OperatorDown",
        "ReconcileErrors",
        "EventsFailing",
        "TrainingJobStalled",
        "TrainingJobRestartingOften",
        "TrainingJobFailed",
        "StreamingJobBehind",
        "StreamingJobAtMaxReplicas",
        "StreamingJobBrokerUnreachable",
        "StreamingJobStalled",
        "StreamingJobAnomaly",
    }
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["runbook_url"].endswith(f"runbook.md#{name.lower()}")
        assert f"## {name}\n" in runbook


def test_every_rule_and_dashboard_query_uses_exported_metrics() -> None:
    have = exported()
    rules = yaml.safe_load((MONITORING / "rules.yaml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used: set[str] = set()
    for expr in exprs:
        names = referenced(expr)
        assert names <= have, (expr, names - have)
        used |= names
    for wanted in (
        "active_pipelines",
        "pipeline_duration_seconds_bucket",
        "pipeline_step_failures_total",
        "dataworks_reconcile_duration_seconds_bucket",
        # the seed's TrainingJob panels: by state, active, GPUs, progress, time, failure rate
        "trainingjob_state",
        "trainingjob_allocated_gpus",
        "trainingjob_progress_percent",
        "trainingjob_duration_seconds_bucket",
        "trainingjob_failed_total",
        "trainingjob_completed_total",
        # StreamingJob: lag, rates, consumers, latency, decisions, reclaims
        "streamingjob_lag_messages",
        "streamingjob_arrival_rate",
        "streamingjob_desired_replicas",
        "streamingjob_latency_p99_seconds",
        "streamingjob_scale_decisions_total",
        "streamingjob_reclaimed_messages_total",
        "streamingjob_anomaly",
        "streamingjob_anomalies_total",
    ):
        assert wanted in used


def test_the_monitoring_overlay_builds() -> None:
    kubectl = ROOT / "bin" / "kubectl"
    out = subprocess.run(
        [str(kubectl), "kustomize", str(ROOT / "deploy" / "with-monitoring")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(out.stdout) if d]
    for kind in ("Deployment", "Service", "ServiceMonitor", "PrometheusRule", "ConfigMap", "ClusterRole"):
        assert kind in kinds
    dashboards = [
        d for d in yaml.safe_load_all(out.stdout) if d and d["metadata"]["name"] == "dataworks-dashboard"
    ]
    assert json.loads(dashboards[0]["data"]["dashboard.json"])["uid"] == "dataworks-operator"
