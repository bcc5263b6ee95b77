"""The local executor (edge layer): one pipeline run as local processes, planned by core.

Each tick observes the local Jobs, calls `core.planning.plan` exactly as the
operator does, and applies the Plan: start Jobs (worker processes), stop them,
suspend/resume them (SIGSTOP/SIGCONT), write the status. Ctrl-C sets
`shutdown: Terminate` on the run, so the planner cancels it as `pipeline-ctl
cancel` would on a cluster; workers get SIGTERM and commit nothing.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from dataworks.api import pipeline as api
from dataworks.api.config import OperatorConfig
from dataworks.core.kit import plan as kitplan
from dataworks.core.pipelines import planning, validation
from dataworks.core.pipelines.steps import StepDef
from dataworks.local.jobs import Launcher, LocalJob
from dataworks.local.runs import RunDir
from dataworks.manifests.jobs import Owner, steps_config_map

LOCAL_NAMESPACE = "local"
TICK_SECONDS = 0.5


@dataclass
class Options:
    max_parallel: int | None = None
    retry_limit: int = OperatorConfig().default_retry_limit
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
        self.cancel_requested = False

    # -- launching -----------------------------------------------------------
    def _env(self, step: StepDef, attempt: int) -> Callable[[int, int], dict[str, str]]:
        def env(index: int, tries: int) -> dict[str, str]:
            out = {
                **self.options.environ,
                "DATAWORKS_STORE": f"file://{self.run.store}",
                "DATAWORKS_NAMESPACE": LOCAL_NAMESPACE,
                "DATAWORKS_PIPELINE": self.pipeline,
                "DATAWORKS_RUN": self.run.name,
                "DATAWORKS_STEP": step.name,
                "DATAWORKS_ATTEMPT": str(attempt),
                "DATAWORKS_PIPELINE_DIR": str(self.pipeline_dir),
                "PYTHONUNBUFFERED": "1",
            }
            if step.is_fan_out:
                out.update(WORKER_INDEX=str(index), TOTAL_WORKERS=str(step.parallelism))
            if step.type == "container":
                out.update({str(e["name"]): str(e["value"]) for e in step.env if "value" in e})
            return out

        return env

    def _argv(self, step: StepDef) -> Callable[[int], list[str]]:
        if step.type == "container":
            return lambda index: [*step.command, *step.args]
        step_file = str(self.run.step_file(step.name))
        return lambda index: [sys.executable, "-m", "dataworks.worker", "--step-file", step_file]

    def _start(self, launch: planning.Launch, now: datetime) -> None:
        step = launch.step
        retries = step.retry_limit if step.retry_limit is not None else self.options.retry_limit
        launcher = Launcher(
            argv=self._argv(step),
            env=self._env(step, launch.attempt),
            cwd=self.run.path,
            log=lambda index, tries: self.run.log(step.name, launch.attempt, index),
        )
        job = LocalJob(
            launch.job_name, step, attempt=launch.attempt, retries=retries, launcher=launcher, wake=self.wake
        )
        self.jobs[launch.job_name] = job
        job.start(now)

    def _write_steps(self, steps: tuple[StepDef, ...]) -> None:
        data = steps_config_map(Owner(api.INFO, self.run.name, LOCAL_NAMESPACE, ""), steps)["data"]
        for file, body in data.items():
            path = self.run.path / "steps" / file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)

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
            self._write_steps(checked[0].steps)
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
                        self._start(launch, now)
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
