"""MLflow tracking for training scripts: one run per TrainingJob, continued by every attempt.

A TrainingJob with `spec.tracking.mlflow` gives its workers MLFLOW_TRACKING_URI,
DATAWORKS_MLFLOW_EXPERIMENT, DATAWORKS_RUN_KEY (the TrainingJob's uid) and
DATAWORKS_RUN_NAME. On rank 0, ``Tracker.start`` finds the run tagged with that
key, or creates it with the tag, so attempt 2 continues attempt 1's run. It logs
the hyperparameters once, each epoch's metrics once (an epoch that a resumed
attempt trains again is not logged twice: MLflow already has it, and a resume
from a checkpoint reproduces it), and the latest checkpoint's path as a tag.
On any other rank, or without MLFLOW_TRACKING_URI, the tracker does nothing.

The client is `mlflow-skinny` (the `tracking` extra), imported only when a run
is tracked. ``report(..., tracking=tracker)`` puts the run's ID and URL in the
progress line, from which the operator fills `status.tracking`.
"""

from __future__ import annotations

import os
import time
from typing import Any

RUN_KEY_TAG = "dataworks.run-key"
CHECKPOINT_TAG = "dataworks.checkpoint"


class Tracker:
    """The tracked run of this TrainingJob (rank 0), or a tracker that does nothing."""

    def __init__(self, client: Any = None, run_id: str | None = None, url: str | None = None) -> None:
        self.client, self.run_id, self.url = client, run_id, url
        self._logged: dict[str, int] = {}  # metric -> the last epoch MLflow has

    @classmethod
    def start(cls, rank: int | None = None, params: dict[str, Any] | None = None) -> Tracker:
        """The run for this TrainingJob on rank 0 (found by its key, or created); else a no-op."""
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        rank = int(os.environ.get("RANK", "0")) if rank is None else rank
        if not uri or rank != 0:
            return cls()
        try:
            from mlflow.tracking import MlflowClient  # only when a run is tracked
        except ImportError as e:
            raise RuntimeError(
                "MLFLOW_TRACKING_URI is set but the MLflow client is missing: "
                "pip install 'dataworks[tracking]' (mlflow-skinny) in the training image"
            ) from e
        client = MlflowClient(tracking_uri=uri)
        name = os.environ.get("DATAWORKS_MLFLOW_EXPERIMENT") or "default"
        key = os.environ.get("DATAWORKS_RUN_KEY") or os.environ.get("DATAWORKS_RUN_NAME") or "local"
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
        found = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{key}'")
        if found:
            run = found[0]
        else:
            tags = {RUN_KEY_TAG: key, "mlflow.runName": os.environ.get("DATAWORKS_RUN_NAME") or key}
            run = client.create_run(experiment_id, tags=tags)
        run_id = run.info.run_id
        tracker = cls(client, run_id, f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}")
        tracker._logged = {
            metric: int(max((m.step for m in client.get_metric_history(run_id, metric)), default=-1))
            for metric in run.data.metrics
        }
        if params and not found:
            tracker.client.log_batch(run_id, params=_params(params))
        return tracker

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def log_epoch(self, epoch: int, **metrics: float) -> None:
        """Log one epoch's metrics at step `epoch`, each at most once per run."""
        if not self.enabled:
            return
        from mlflow.entities import Metric

        now = _millis()
        fresh = [
            Metric(name, float(value), now, epoch)
            for name, value in metrics.items()
            if epoch > self._logged.get(name, -1)
        ]
        if fresh:
            self.client.log_batch(self.run_id, metrics=fresh)
            for m in fresh:
                self._logged[m.key] = epoch

    def log_checkpoint(self, path: str | os.PathLike[str]) -> None:
        if self.enabled:
            self.client.set_tag(self.run_id, CHECKPOINT_TAG, str(path))

    def finish(self) -> None:
        """Mark the run FINISHED (call once the training succeeded)."""
        if self.enabled:
            self.client.set_terminated(self.run_id, "FINISHED")

    def fields(self) -> dict[str, str]:
        """What a progress line says about the run."""
        return {"runId": self.run_id, "url": self.url or ""} if self.enabled and self.run_id else {}


def _params(params: dict[str, Any]) -> list[Any]:
    from mlflow.entities import Param

    return [Param(str(k), str(v)[:6000]) for k, v in sorted(params.items())]


def _millis() -> int:
    return int(time.time() * 1000)
