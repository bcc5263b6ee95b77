"""The local executor (edge layer): one pipeline run on this machine, by the operator's own controller.

It hosts the Pipeline controller (controllers/pipelines.py, the one the
operator runs) in the local runtime (local/runtime.py): the Jobs and the
ConfigMap come from the same builders as on the cluster, and the local
kubelet runs them. What is particular to this machine is set here: the run's
store and retry default, no Secrets (connections come from the environment),
`--max-parallel`, and Ctrl-C, which sets `shutdown: Terminate` on the run so
the controller cancels it as `dataworks cancel` would on a cluster; workers
get SIGTERM and commit nothing.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from dataworks.api import pipeline as api
from dataworks.api.config import OperatorConfig, PipelinesConfig
from dataworks.controllers.pipelines import PipelineController
from dataworks.core.kit import naming
from dataworks.core.kit import plan as kitplan
from dataworks.local import kubelet
from dataworks.local.jobs import LocalJob
from dataworks.local.runs import RunDir
from dataworks.local.runtime import Hooks, LocalRuntime, Node

LOCAL_NAMESPACE = "local"


@dataclass
class Options:
    max_parallel: int | None = None
    retry_limit: int = PipelinesConfig().default_retry_limit
    on_event: Callable[[kitplan.Event], None] = lambda e: None
    on_tick: Callable[[dict[str, Any], dict[str, LocalJob]], None] = lambda s, j: None
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))


def without_nulls(value: Any) -> Any:
    """What the API server stores of a written status: no null fields."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


class Executor:
    """Runs (or resumes, after `retry`) one run directory to a terminal phase."""

    def __init__(self, run: RunDir, pipeline_dir: Path, options: Options | None = None) -> None:
        self.run, self.pipeline_dir = run, pipeline_dir
        self.options = options or Options()
        self.cancel_requested = False
        settings = PipelinesConfig(
            artifact_store=f"file://{run.store}", default_retry_limit=self.options.retry_limit
        )
        self.controller = PipelineController(OperatorConfig(pipelines=settings))
        # The steps ConfigMap's files live where the run keeps them (steps/<step>.json).
        places = {naming.config_map_name(run.name): run.path / "steps"}
        node = Node(
            root=run.path,
            environ=self.options.environ,
            extra_env={"DATAWORKS_PIPELINE_DIR": str(pipeline_dir), "PYTHONUNBUFFERED": "1"},
            logs=lambda job, index, tries: run.log(job.step_name, job.attempt, index),
        )
        hooks = Hooks(on_event=self.options.on_event, on_tick=self.options.on_tick)
        self.runtime = LocalRuntime(self.controller, node, kubelet.Sandbox(run.path, places=places), hooks)

    @property
    def jobs(self) -> dict[str, LocalJob]:
        return self.runtime.jobs

    def _object(self) -> dict[str, Any]:
        """The run as the Pipeline object the controller reconciles."""
        saved = self.run.pipeline()
        spec = dict(saved.get("spec") or {})
        if self.options.max_parallel:
            limit = spec.get("maxParallel")
            spec["maxParallel"] = (
                min(limit, self.options.max_parallel) if limit else self.options.max_parallel
            )
        spec.pop("connectionsSecret", None)  # no Secrets here: connections come from the environment
        meta = {**saved.get("metadata", {}), "name": self.run.name, "namespace": LOCAL_NAMESPACE}
        meta.update(uid=self.run.name, generation=1)
        status = self.run.status().model_dump(mode="json", by_alias=True, exclude_none=True)
        return {
            "apiVersion": api.INFO.api_version,
            "kind": api.KIND,
            "metadata": meta,
            "spec": spec,
            "status": status,
        }

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.cancel_requested = True
        self.runtime.wake.set()

    def execute(self) -> api.PipelineStatus:
        obj = self._object()
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, self._on_sigint) if in_main else None
        try:
            while True:
                if self.cancel_requested and obj["spec"].get("shutdown") != "Terminate":
                    obj["spec"] = {**obj["spec"], "shutdown": "Terminate"}
                    obj["metadata"]["generation"] += 1  # a spec edit, as the API server counts it
                actions = self.runtime.tick(obj, datetime.now(UTC))
                if actions.status is not None:
                    obj["status"] = without_nulls(actions.status)
                    self.run.save_status(api.PipelineStatus.model_validate(obj["status"]))
                self.options.on_tick(obj["status"], self.jobs)
                if (
                    self.controller.info.is_terminal(obj["status"].get("phase"))
                    and not self.runtime.running()
                ):
                    return api.PipelineStatus.model_validate(obj["status"])
                self.runtime.wait(actions)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            self.runtime.stop()
