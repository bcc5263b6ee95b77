"""The local executor (edge layer): one pipeline run as local processes, planned by core.

Each tick observes the local Jobs, calls `core.pipelines.planning.plan` exactly
as the operator does, and applies the Plan: the Jobs and the ConfigMap come
from the same builders as on the cluster (`manifests.jobs`), and the local
kubelet (local/kubelet.py) runs them; it stops them, suspends and resumes them
(SIGSTOP/SIGCONT), and writes the status. Ctrl-C sets
`shutdown: Terminate` on the run, so the planner cancels it as `pipeline-ctl
cancel` would on a cluster; workers get SIGTERM and commit nothing.
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
from dataworks.api.config import PipelinesConfig
from dataworks.core.kit import naming
from dataworks.core.kit import plan as kitplan
from dataworks.core.pipelines import planning, validation
from dataworks.core.pipelines.steps import StepDef
from dataworks.local import kubelet
from dataworks.local.jobs import Launcher, LocalJob
from dataworks.local.runs import RunDir
from dataworks.manifests.jobs import Owner, step_job, steps_config_map

LOCAL_NAMESPACE = "local"
TICK_SECONDS = 0.5


@dataclass
class Options:
    max_parallel: int | None = None
    retry_limit: int = PipelinesConfig().default_retry_limit
    on_event: Callable[[kitplan.Event], None] = lambda e: None
    on_tick: Callable[[api.PipelineStatus, dict[str, LocalJob]], None] = lambda s, j: None
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))


class Executor:
    """Runs (or resumes, after `retry`) one run directory to a terminal phase."""

    def __init__(self, run: RunDir, pipeline_dir: Path, options: Options | None = None) -> None:
        self.run, self.pipeline_dir = run, pipeline_dir
        self.options = options or Options()
        self.obj = run.pipeline()
        self.pipeline = str(
            self.obj["metadata"].get("labels", {}).get("dataworks.io/pipeline-name") or run.name
        )
        self.wake = threading.Event()
        self.jobs: dict[str, LocalJob] = {}
        # The steps ConfigMap's files live where the run keeps them (steps/<step>.json).
        places = {naming.config_map_name(run.name): run.path / "steps"}
        self.sandbox = kubelet.Sandbox(run.path, places=places)
        self.cancel_requested = False

    # -- launching: the cluster's manifests, run by the local kubelet ----------
    def _owner(self) -> Owner:
        return Owner(api.INFO, self.run.name, LOCAL_NAMESPACE, uid=self.run.name)

    def _config(self) -> PipelinesConfig:
        """The operator's defaults, with this run's store and retry default."""
        return PipelinesConfig(
            artifact_store=f"file://{self.run.store}", default_retry_limit=self.options.retry_limit
        )

    def _node_env(self) -> dict[str, str]:
        """What this machine adds to every process, as a node would: where relative files are."""
        return {"DATAWORKS_PIPELINE_DIR": str(self.pipeline_dir), "PYTHONUNBUFFERED": "1"}

    def _start(self, launch: planning.Launch, spec: api.PipelineSpec, now: datetime) -> None:
        job = step_job(self._owner(), launch, spec, self._config())
        kubelet.save(self.run.path / "manifests" / f"{launch.job_name}.json", job)
        runs_in = kubelet.container(
            job,
            self.sandbox,
            self.run.path / "pods" / launch.job_name,
            self.options.environ,
            self._node_env(),
        )
        step = launch.step.name
        launcher = Launcher(
            argv=runs_in.argv,
            env=lambda index, tries: runs_in.env(index),
            cwd=self.run.path,
            log=lambda index, tries: self.run.log(step, launch.attempt, index),
        )
        local = LocalJob(job, launcher=launcher, wake=self.wake)
        self.jobs[launch.job_name] = local
        local.start(now)

    def _apply_steps(self, steps: tuple[StepDef, ...]) -> None:
        """The ConfigMap of step definitions, as the operator creates it, made real in the run."""
        cm = steps_config_map(self._owner(), steps)
        kubelet.save(self.run.path / "manifests" / f"{cm['metadata']['name']}.json", cm)
        self.sandbox.apply(cm)

    # -- the loop ------------------------------------------------------------
    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.cancel_requested = True
        self.wake.set()

    def _spec(self) -> dict[str, Any]:
        spec = dict(self.obj.get("spec") or {})
        if self.options.max_parallel:
            limit = spec.get("maxParallel")
            spec["maxParallel"] = (
                min(limit, self.options.max_parallel) if limit else self.options.max_parallel
            )
        return spec

    def execute(self) -> api.PipelineStatus:
        spec = self._spec()
        checked = validation.validate_raw(spec)
        if checked[0] is not None:
            # Secrets do not exist here: connections come from this machine's environment.
            local_spec = checked[0].spec.model_copy(update={"connections_secret": None})
            self._apply_steps(checked[0].steps)
        status = self.run.status()
        meta = kitplan.Meta(name=self.run.name, namespace=LOCAL_NAMESPACE)
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, self._on_sigint) if in_main else None
        saved: dict[str, Any] | None = None
        try:
            while True:
                self.wake.clear()
                now = datetime.now(UTC)
                if self.cancel_requested and spec.get("shutdown") != "Terminate":
                    spec = {**spec, "shutdown": "Terminate"}
                    checked = validation.validate_raw(spec)
                for job in self.jobs.values():
                    job.poll(now)
                views = [j.view() for j in self.jobs.values()]
                plan = planning.plan(meta, checked, status, views, now=now)
                for name in plan.delete:
                    self.jobs[name].terminate()
                for name in plan.suspend:
                    self.jobs[name].suspend()
                for name in plan.resume:
                    self.jobs[name].resume()
                for launch in plan.create:
                    if launch.job_name not in self.jobs:
                        self._start(launch, local_spec, now)
                status = plan.status
                dump = status.model_dump(mode="json")
                if dump != saved:
                    self.run.save_status(status)
                    saved = dump
                for event in plan.events:
                    self.options.on_event(event)
                self.options.on_tick(status, self.jobs)
                if plan.finished and not any(j.running for j in self.jobs.values()):
                    return status
                if not plan.create:
                    self.wake.wait(TICK_SECONDS)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            for job in self.jobs.values():
                if job.running:
                    job.terminate()
