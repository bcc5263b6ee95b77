"""A StreamingJob hosted on this machine for a stream benchmark (edge layer).

`dataworks bench stream` with a `streamingJob:` scenario does not start a fixed group of
consumers: it runs the operator's own StreamingJob controller in the local runtime (as
`dataworks run --local` does), on a thread, so the consumers are the ones its autoscaler asks
for, under its strategy. The only difference from a user's run: each consumer also commits its
report and per-second figures into the benchmark's directory (`--report`, `--stats`), which the
loss check and the samples read, exactly as for a fixed group.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from dataworks.api import streamingjob as api
from dataworks.controllers.base import Children
from dataworks.controllers.streamingjobs import StreamingJobController
from dataworks.core.kit.plan import Actions
from dataworks.local import runs
from dataworks.local.objects import ObjectExecutor
from dataworks.local.runtime import Hooks


class ReportingController(StreamingJobController):
    """The StreamingJob controller, whose consumers also commit reports into `workdir`."""

    def __init__(self, workdir: Path, commit_every: float) -> None:
        super().__init__()
        self.workdir, self.commit_every = workdir, commit_every

    def plan(self, obj: dict[str, Any], children: Children, observed: Any, now: datetime) -> Actions:
        actions = super().plan(obj, children, observed, now)
        for manifest in actions.create:
            if manifest.get("kind") == "Deployment":
                self._report(manifest["spec"]["template"])
        for kind, _, patch in actions.patch:
            if kind == "Deployment" and "template" in (patch.get("spec") or {}):
                self._report(patch["spec"]["template"])
        return actions

    def _report(self, template: dict[str, Any]) -> None:
        [container] = template["spec"]["containers"]
        # {pid}: a pod restarted in place under its name keeps its predecessor's report.
        container["command"] += [
            "--report",
            f"{self.workdir}/$(POD_NAME)-{{pid}}.json",
            "--stats",
            f"{self.workdir}/$(POD_NAME)-{{pid}}.stats",
            "--commit-every",
            str(self.commit_every),
        ]


class LocalStreamingJob:
    """One StreamingJob run on a thread of this process until `stop`."""

    reports_in_broker = False

    def __init__(
        self, spec: dict[str, Any], source: dict[str, Any], workdir: Path, commit_every: float
    ) -> None:
        run_dir = runs.RunDir(workdir / "bench")  # the StreamingJob's name: its pods are bench-...
        meta = {"name": "bench", "namespace": "local", "generation": 1}
        run_dir.save_pipeline(
            {
                "apiVersion": api.INFO.api_version,
                "kind": api.KIND,
                "metadata": meta,
                "spec": {**spec, "source": source},
            }
        )
        self.status: dict[str, Any] = {}
        hooks = Hooks(on_tick=lambda status, jobs: setattr(self, "status", dict(status or {})))
        self.executor = ObjectExecutor(run_dir, ReportingController(workdir, commit_every), hooks)
        self.thread = threading.Thread(target=self.executor.execute, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Every consumer stops (SIGTERM: each acknowledges its batch in hand), then the thread."""
        self.executor.interrupted = True
        self.executor.runtime.wake.set()
        self.thread.join(timeout=120)

    def live(self) -> list[str]:
        return [name for name, proc in self.processes().items() if proc.poll() is None]

    def kill(self, name: str) -> None:
        """SIGKILL: the local kubelet restarts the pod in place, as a kubelet would."""
        if (proc := self.processes().get(name)) is not None:
            proc.send_signal(signal.SIGKILL)

    def abort(self) -> None:
        self.stop()

    def processes(self) -> dict[str, subprocess.Popen[bytes]]:
        """Each consumer pod's current process, by pod name."""
        out = {}
        for deployment in list(self.executor.runtime.deployments.values()):
            for pod in list(deployment.pods):
                if pod.proc is not None:
                    out[pod.name] = pod.proc
        return out

    @property
    def desired(self) -> int | None:
        value = self.status.get("desiredReplicas")
        return None if value is None else int(value)
