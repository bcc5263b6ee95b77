"""Running one object of any kind on this machine to its end (edge layer).

`ObjectExecutor` hosts a controller (the very one the operator runs) in the
local runtime: it rebuilds the object from its run directory, ticks until the
controller calls it finished (`Controller.active`) and no process runs, and
saves each new status. Ctrl-C stops the processes and leaves the status as it
was, so running the run again resumes it. Each kind's module
(`local/sequences.py`, `local/trainings.py`) only names its controller.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from dataworks.controllers.base import Controller
from dataworks.local import kubelet
from dataworks.local.executing import LOCAL_NAMESPACE, without_nulls
from dataworks.local.runs import RunDir
from dataworks.local.runtime import Hooks, LocalRuntime, Node


@dataclass
class Outcome:
    """How a local run ended: its last status, and whether Ctrl-C stopped it."""

    status: dict[str, Any]
    interrupted: bool = False


class ObjectExecutor:
    """Runs (or resumes) one run directory of `controller`'s kind to its end."""

    def __init__(
        self,
        run: RunDir,
        controller: Controller,
        hooks: Hooks | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.run, self.controller, self.hooks = run, controller, hooks or Hooks()
        node = Node(
            root=run.path,
            environ=dict(os.environ) if environ is None else environ,
            extra_env={"PYTHONUNBUFFERED": "1"},
            logs=self.log_path,
        )
        self.runtime = LocalRuntime(controller, node, kubelet.Sandbox(run.path), self.hooks)
        self.interrupted = False

    def log_path(self, job: Any, index: int, tries: int) -> Any:
        return self.run.log(job.step_name, job.attempt, index)

    def _object(self) -> dict[str, Any]:
        saved = self.run.pipeline()
        meta = {**saved.get("metadata", {}), "name": self.run.name, "namespace": LOCAL_NAMESPACE}
        meta.update(uid=self.run.name, generation=int(meta.get("generation") or 1))
        info = self.controller.info
        return {
            "apiVersion": info.api_version,
            "kind": info.kind,
            "metadata": meta,
            "spec": saved.get("spec") or {},
            "status": self.run.raw_status(),
        }

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = True
        self.runtime.wake.set()

    def execute(self) -> Outcome:
        obj = self._object()
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, self._on_sigint) if in_main else None
        try:
            while not self.interrupted:
                actions = self.runtime.tick(obj, datetime.now(UTC))
                if actions.status is not None:
                    obj["status"] = without_nulls(actions.status)
                    self.run.save_raw_status(obj["status"])
                self.hooks.on_tick(obj["status"], self.runtime.jobs)
                if obj["status"] and not self.controller.active(obj) and not self.runtime.running():
                    break
                self.runtime.wait(actions)
            return Outcome(obj["status"], interrupted=self.interrupted)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            self.runtime.stop()
