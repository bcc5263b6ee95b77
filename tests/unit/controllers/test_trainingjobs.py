"""The TrainingJob controller's metrics (the seed's names): counted once per transition, when the
status is written, and per-object gauges gone once the training ends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from dataworks.controllers.trainingjobs import Observed, TrainingJobController
from dataworks.observability.training import TrainingMetrics

NOW = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)
KEY = ("ns", "tj")


def obj(status: dict[str, Any] | None) -> dict[str, Any]:
    spec = {"model": "m", "dataset": "d", "numWorkers": 2, "gpusPerWorker": 1}
    return {
        "metadata": {"name": "tj", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": spec,
        "status": status,
    }


def job(conditions: list[str], ready: int = 0) -> dict[str, Any]:
    conds = [{"type": c, "status": "True"} for c in conditions]
    labels = {"dataworks.io/trainingjob": "tj", "dataworks.io/attempt": "1"}
    return {"metadata": {"name": "tj-a1", "labels": labels}, "status": {"conditions": conds, "ready": ready}}


def step(
    c: TrainingJobController, status: dict[str, Any] | None, jobs: list[dict[str, Any]], **seen: Any
) -> dict[str, Any]:
    actions = c.plan(obj(status), {"Job": jobs}, Observed(**seen), NOW)
    assert actions.status is not None
    c.status_written(KEY, status, actions.status, NOW)
    return actions.status


def test_counts_and_gauges_follow_the_transitions() -> None:
    registry = CollectorRegistry()
    c = TrainingJobController(metrics=TrainingMetrics(registry))
    value = registry.get_sample_value
    st = step(c, None, [])
    assert value("trainingjob_created_total") == 1
    st = step(c, st, [job([], ready=2)])
    assert st["state"] == "Running"
    assert value("trainingjob_state", {"namespace": "ns", "trainingjob": "tj", "state": "Running"}) == 1
    assert value("trainingjob_allocated_gpus", {"namespace": "ns", "trainingjob": "tj"}) == 2
    assert value("trainingjob_startup_seconds_count") == 1
    reported = {"epoch": 3, "totalEpochs": 4, "metrics": {"loss": 0.25}}
    st = step(c, st, [job([], ready=2)], reported=reported, polled=True)
    assert value("trainingjob_progress_percent", {"namespace": "ns", "trainingjob": "tj"}) == 75
    assert value("trainingjob_loss", {"namespace": "ns", "trainingjob": "tj"}) == 0.25
    step(c, st, [job(["Complete"])])
    assert value("trainingjob_completed_total") == 1
    assert value("trainingjob_duration_seconds_count", {"state": "Succeeded"}) == 1
    assert value("trainingjob_created_total") == 1  # not again
    assert value("trainingjob_state", {"namespace": "ns", "trainingjob": "tj", "state": "Running"}) is None


def test_a_kueue_queue_label_goes_to_each_attempts_job() -> None:
    c = TrainingJobController()
    queued = obj(None)
    queued["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "gpu-queue"}
    actions = c.plan(queued, {"Job": []}, Observed(), NOW)
    (job_manifest,) = [m for m in actions.create if m["kind"] == "Job"]
    assert job_manifest["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    plain = c.plan(obj(None), {"Job": []}, Observed(), NOW)
    (job_manifest,) = [m for m in plain.create if m["kind"] == "Job"]
    assert "kueue.x-k8s.io/queue-name" not in job_manifest["metadata"]["labels"]


def test_a_restarts_recovery_is_observed_once_when_every_worker_runs_again() -> None:
    registry = CollectorRegistry()
    c = TrainingJobController(metrics=TrainingMetrics(registry))
    restart = {"attempt": 1, "cause": "ExitCode", "time": "2026-12-01T12:00:00Z"}
    st = {"state": "Initializing", "startTime": "2026-12-01T11:59:00Z", "restarts": [restart]}
    st = step(c, st, [job([], ready=2)])
    assert st["state"] == "Running"
    assert st["restarts"][-1]["recoveredAfterSeconds"] == 30.0
    assert registry.get_sample_value("trainingjob_restart_recovery_seconds_count") == 1
    assert registry.get_sample_value("trainingjob_restart_recovery_seconds_sum") == 30.0
    reported = {"epoch": 1, "totalEpochs": 4, "metrics": {}}
    step(c, st, [job([], ready=2)], reported=reported, polled=True)
    assert registry.get_sample_value("trainingjob_restart_recovery_seconds_count") == 1  # not again
