"""A Deployment on this machine (edge layer): `replicas` copies of its pod template as processes.

It plays the ReplicaSet controller and the kubelet for the Deployment a StreamingJob's
controller builds (manifests/streamingjobs.py), so `dataworks run --local` runs the very
consumers the cluster would:
- each pod is a process named `<deployment>-<template hash>-<n>`, its name given to the
  container through the downward API (`metadata.name`), as the consumers need;
- a process that exits is started again under the same pod name after a pause
  (restartPolicy Always: a consumer restarted in place re-reads its own pending entries);
- scaling down stops the newest pods (SIGTERM, then SIGKILL after the grace period); a new
  template (a strategy switch) replaces every pod, one by one, new before old;
- the container's `resources.limits` are enforced with a cgroup per process (local/cgroups.py),
  and a process the OOM killer ended is reported as a kubelet does, `OOMKilled` in its
  container's `lastState`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataworks.local import cgroups, kubelet

GRACE_SECONDS = 10.0
RESTART_SECONDS = 1.0

# A pod's way of running: (deployment manifest, pod name) -> the container's argv and env.
Runner = Callable[[dict[str, Any], str], kubelet.Container]


@dataclass
class LocalPod:
    name: str
    template_hash: str
    proc: subprocess.Popen[bytes] | None = None
    exited_at: float | None = None
    restarts: int = 0
    group: cgroups.Group | None = None  # its container's limits, while it runs
    last_end: dict[str, Any] | None = None  # lastState.terminated of its container, once it ended


class LocalDeployment:
    def __init__(
        self,
        manifest: dict[str, Any],
        *,
        runner: Runner,
        logs: Path,
        wake: threading.Event,
        limiter: cgroups.Limiter | None = None,
    ) -> None:
        self.manifest, self.runner, self.logs, self.wake = manifest, runner, logs, wake
        self.limiter = limiter or cgroups.default()
        self.pods: list[LocalPod] = []
        self.serial = 0

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    @property
    def replicas(self) -> int:
        return int(self.manifest["spec"].get("replicas") or 0)

    def _hash(self) -> str:
        meta = self.manifest["spec"]["template"].get("metadata") or {}
        return str((meta.get("annotations") or {}).get("dataworks.io/template-hash", "local"))[:10]

    def patch(self, spec: dict[str, Any]) -> None:
        """A merge patch of the Deployment's spec (replicas, template)."""
        self.manifest = {**self.manifest, "spec": {**self.manifest["spec"], **spec}}

    def reconcile(self) -> None:
        """Start, restart and stop processes until the pods match the spec."""
        now = time.monotonic()
        for pod in self.pods:
            if pod.proc is not None and pod.proc.poll() is not None and pod.exited_at is None:
                pod.exited_at = now
            if pod.exited_at is not None and now - pod.exited_at >= RESTART_SECONDS:
                pod.restarts += 1
                self._spawn(pod)
        current = self._hash()
        stale = [p for p in self.pods if p.template_hash != current]
        fresh = [p for p in self.pods if p.template_hash == current]
        while len(fresh) < self.replicas:  # new pods before old ones go (maxUnavailable 0)
            self.serial += 1
            pod = LocalPod(f"{self.name}-{current}-{self.serial}", current)
            self.pods.append(pod)
            fresh.append(pod)
            self._spawn(pod)
        for pod in [*stale, *reversed(fresh[self.replicas :])]:
            self._stop(pod)
            self.pods.remove(pod)

    def _spawn(self, pod: LocalPod) -> None:
        runs = self.runner(self.manifest, pod.name)
        log = self.logs / f"{pod.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        pod.exited_at = None
        with log.open("ab") as out:
            try:
                pod.proc = subprocess.Popen(
                    runs.argv(0), env=runs.env(0), stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )  # fmt: skip
            except OSError as e:
                out.write(f"error: cannot start {runs.argv(0)[0]!r}: {e.strerror}\n".encode())
                pod.proc, pod.exited_at = None, time.monotonic()
                return
        (container,) = self.manifest["spec"]["template"]["spec"]["containers"]
        limits = cgroups.Limits.of(container)
        pod.group = self.limiter.start(f"{pod.name}-{pod.proc.pid}", limits, pod.proc.pid)
        threading.Thread(target=self._reap, args=(pod, pod.proc, pod.group), daemon=True).start()

    def _reap(self, pod: LocalPod, proc: subprocess.Popen[bytes], group: cgroups.Group | None) -> None:
        code = proc.wait()
        oom = group is not None and group.end()
        if pod.proc is proc:  # not a later process of the pod's
            pod.group = None
            reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
            exit_code = 128 - code if code < 0 else code  # a signal's end, as a runtime reports it
            pod.last_end = {"exitCode": exit_code, "reason": reason}
        self.wake.set()

    def _stop(self, pod: LocalPod) -> None:
        if pod.proc is None or pod.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pod.proc.pid, signal.SIGTERM)
        try:
            pod.proc.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pod.proc.pid, signal.SIGKILL)
            pod.proc.wait()

    def terminate(self) -> None:
        for pod in self.pods:
            self._stop(pod)
        self.pods = []

    @property
    def running(self) -> bool:
        return any(p.proc is not None and p.proc.poll() is None for p in self.pods)

    def as_object(self) -> dict[str, Any]:
        """The Deployment as the API server would return it, with the status its controller writes."""
        up = sum(1 for p in self.pods if p.proc is not None and p.proc.poll() is None)
        status = {"replicas": len(self.pods), "readyReplicas": up, "availableReplicas": up}
        return {**self.manifest, "status": status}

    def pod_objects(self) -> list[dict[str, Any]]:
        labels = (self.manifest["spec"]["template"].get("metadata") or {}).get("labels") or {}
        name = self.manifest["spec"]["template"]["spec"]["containers"][0]["name"]
        out = []
        for p in self.pods:
            alive = p.proc is not None and p.proc.poll() is None
            ready = [{"type": "Ready", "status": "True" if alive else "False"}]
            container: dict[str, Any] = {"name": name, "restartCount": p.restarts, "ready": alive}
            if p.last_end is not None:
                container["lastState"] = {"terminated": p.last_end}
            out.append({"metadata": {"name": p.name, "labels": dict(labels)},
                        "status": {"phase": "Running", "conditions": ready,
                                   "containerStatuses": [container]}})  # fmt: skip
        return out
