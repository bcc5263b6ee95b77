"""A SequentialJob run on this machine (edge layer), by the operator's own controller.

It hosts the SequentialJob controller (controllers/sequentialjobs.py, the one
the operator runs) in the local runtime (local/runtime.py): each step's Job is
the manifest the cluster would get, run by the local kubelet. A
PersistentVolumeClaim the template mounts becomes a folder of the run
(`claims/<claim>`), shared by every step; a Secret's key comes from this
machine's environment, as for pipelines. Ctrl-C stops the running step's
processes and leaves the status as it was: running the run again
(`dataworks retry --local`) resumes it from that step.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from dataworks.api import sequentialjob as api
from dataworks.controllers.sequentialjobs import SequentialJobController
from dataworks.local import kubelet
from dataworks.local.executing import LOCAL_NAMESPACE, without_nulls
from dataworks.local.runs import RunDir
from dataworks.local.runtime import Hooks, LocalRuntime, Node


@dataclass
class Outcome:
    """How a local run of a sequence ended: its last status, and whether Ctrl-C stopped it."""

    status: dict[str, Any]
    interrupted: bool = False


@dataclass
class SequenceExecutor:
    """Runs (or resumes, or re-runs after `retry`) one SequentialJob run directory to its end."""

    run: RunDir
    hooks: Hooks = field(default_factory=Hooks)
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def __post_init__(self) -> None:
        self.controller = SequentialJobController()
        node = Node(
            root=self.run.path,
            environ=self.environ,
            extra_env={"PYTHONUNBUFFERED": "1"},
            logs=lambda job, index, tries: self.run.log(job.step_name, job.attempt, index),
        )
        self.runtime = LocalRuntime(self.controller, node, kubelet.Sandbox(self.run.path), self.hooks)
        self.interrupted = False

    def _object(self) -> dict[str, Any]:
        """The run as the SequentialJob object the controller reconciles."""
        saved = self.run.pipeline()
        meta = {**saved.get("metadata", {}), "name": self.run.name, "namespace": LOCAL_NAMESPACE}
        meta.update(uid=self.run.name, generation=int(meta.get("generation") or 1))
        return {
            "apiVersion": api.INFO.api_version,
            "kind": api.KIND,
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
                if (
                    self.controller.info.is_terminal(obj["status"].get("phase"))
                    and not self.runtime.running()
                ):
                    break
                self.runtime.wait(actions)
            return Outcome(obj["status"], interrupted=self.interrupted)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            self.runtime.stop()
