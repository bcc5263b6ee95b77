"""The local runtime (edge layer): hosts a controller of any kind on this machine.

It is the operator runtime's twin for one object: each tick it gives the
controller the object (from the run directory) and its children (the local
Jobs and Deployments and their pods, shown as the API server would show them), lets it
observe (through a Reader that answers from them and from the secrets the run was given) and
plan, and applies the Actions with the local kubelet: children are created (ConfigMaps made
real, Jobs and Deployments run as processes), deleted (SIGTERM, then SIGKILL), patched (a
Job's suspend and resume as SIGSTOP/SIGCONT, a Deployment's replicas and template), the
status is saved, and the Events reported.
The controller is the very object the operator hosts; nothing here knows a kind.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataworks.controllers.base import Controller
from dataworks.core.kit.labels import JOB_NAME
from dataworks.core.kit.plan import Actions, Event
from dataworks.local import cgroups, kubelet, runs
from dataworks.local.deployments import LocalDeployment
from dataworks.local.jobs import Launcher, LocalJob

TICK_SECONDS = 0.5


@dataclass
class Hooks:
    """What the caller is told as the run goes."""

    on_event: Callable[[Event], None] = lambda e: None
    on_tick: Callable[[dict[str, Any], dict[str, LocalJob]], None] = lambda status, jobs: None


@dataclass
class Node:
    """This machine as a node: its environment, what it adds to every process, where runs live."""

    root: Path  # the run directory
    environ: dict[str, str]
    extra_env: dict[str, str] = field(default_factory=dict)
    logs: Callable[[LocalJob, int, int], Path] | None = None  # (job, index, try) -> log file
    # Secret keys a controller may read, as (secret, key) -> value: a StreamingJob's Redis
    # password, given on the command line (there is no Secret store on this machine).
    secrets: dict[tuple[str, str], str] = field(default_factory=dict)


class Reader:
    """Answers a controller's extra reads from the local Jobs (their pods) and the node."""

    def __init__(
        self,
        jobs: dict[str, LocalJob],
        secrets: dict[tuple[str, str], str] | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.jobs, self.secrets, self.workdir = jobs, secrets or {}, workdir

    async def find(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A pipeline depended on: its newest local run in the same work directory."""
        if kind != "Pipeline" or self.workdir is None:
            return None
        return runs.latest_of(self.workdir, name)

    async def list(self, kind: str, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        if kind != "Pod":
            return []
        job = self.jobs.get(labels.get(JOB_NAME, ""))
        return job.pods() if job is not None else []

    async def secret_value(self, namespace: str, name: str, key: str) -> str:
        try:
            return self.secrets[(name, key)]
        except KeyError:
            raise KeyError(f"Secret {name} key {key!r} was not given to this local run") from None

    async def tail(self, pod: str, namespace: str, container: str, lines: int) -> str:
        """A worker's log tail, as `kubectl logs --tail` reads a pod's (TrainingJob progress)."""
        for job in self.jobs.values():
            found = job.log_tail(pod, lines)
            if found is not None:
                return found
        return ""


class LocalRuntime:
    """Runs one object of a controller's kind to the end, on this machine."""

    def __init__(self, controller: Controller, node: Node, sandbox: kubelet.Sandbox, hooks: Hooks) -> None:
        self.controller, self.node, self.sandbox, self.hooks = controller, node, sandbox, hooks
        self.jobs: dict[str, LocalJob] = {}
        self.deployments: dict[str, LocalDeployment] = {}
        self.wake = threading.Event()
        # One event loop for the whole run, as the operator has: a controller's connections (a
        # StreamingJob's Redis client) belong to the loop that opened them.
        self.loop = asyncio.new_event_loop()

    def children(self) -> dict[str, list[dict[str, Any]]]:
        out = {"Job": [job.as_object() for job in self.jobs.values()]}
        if self.deployments:
            out["Deployment"] = [d.as_object() for d in self.deployments.values()]
            out["Pod"] = [p for d in self.deployments.values() for p in d.pod_objects()]
        return out

    def tick(self, obj: dict[str, Any], now: datetime) -> Actions:
        """One reconcile: observe, plan, apply. Returns the Actions it applied."""
        for job in self.jobs.values():
            job.poll(now)
        for deployment in self.deployments.values():
            deployment.reconcile()
        children = self.children()
        reader = Reader(self.jobs, self.node.secrets, workdir=self.node.root.parent.parent)
        observed = self.loop.run_until_complete(self.controller.observe(obj, children, reader))
        actions = self.controller.plan(obj, children, observed, now)
        self.apply(actions, now)
        return actions

    def apply(self, actions: Actions, now: datetime) -> None:
        for manifest in actions.create:
            name = manifest["metadata"]["name"]
            kubelet.save(self.node.root / "manifests" / f"{name}.json", manifest)
            if manifest["kind"] == "Job":
                if name not in self.jobs:
                    self._start(manifest, now)
            elif manifest["kind"] == "Deployment":
                if name not in self.deployments:
                    self.deployments[name] = LocalDeployment(
                        manifest, runner=self._pod, logs=self.node.root / "logs" / name, wake=self.wake
                    )
                    self.deployments[name].reconcile()
            else:
                self.sandbox.apply(manifest)
        for kind, name in actions.delete:
            if kind == "Job" and name in self.jobs:
                self.jobs[name].terminate()
        for kind, name, patch in actions.patch:
            if kind == "Deployment" and name in self.deployments:
                self.deployments[name].patch(patch.get("spec") or {})
                self.deployments[name].reconcile()
                continue
            suspend = (patch.get("spec") or {}).get("suspend")
            if kind == "Job" and name in self.jobs and suspend is not None:
                if suspend:
                    self.jobs[name].suspend()
                else:
                    self.jobs[name].resume()
        for event in actions.events:
            self.hooks.on_event(event)

    def _start(self, manifest: dict[str, Any], now: datetime) -> None:
        name = str(manifest["metadata"]["name"])
        runs_in = kubelet.container(
            manifest, self.sandbox, self.node.root / "pods" / name, self.node.environ, self.node.extra_env
        )
        job: LocalJob

        def log(index: int, tries: int) -> Path:
            if self.node.logs is not None:
                return self.node.logs(job, index, tries)
            return self.node.root / "logs" / name / f"worker-{index}.log"

        launcher = Launcher(
            argv=runs_in.argv,
            env=lambda index, tries: runs_in.env(index),
            cwd=self.node.root,
            log=log,
            termination=runs_in.termination,
            limits=cgroups.Limits.of(manifest["spec"]["template"]["spec"]["containers"][0]),
        )
        job = LocalJob(manifest, launcher=launcher, wake=self.wake)
        self.jobs[name] = job
        job.start(now)

    def _pod(self, deployment: dict[str, Any], pod: str) -> kubelet.Container:
        return kubelet.container(
            deployment,
            self.sandbox,
            self.node.root / "pods" / pod,
            self.node.environ,
            self.node.extra_env,
            pod,
        )

    def running(self) -> bool:
        return any(j.running for j in self.jobs.values()) or any(d.running for d in self.deployments.values())

    def stop(self) -> None:
        for job in self.jobs.values():
            if job.running:
                job.terminate()
        for deployment in self.deployments.values():
            deployment.terminate()
        if not self.loop.is_closed():
            self.loop.close()

    def wait(self, actions: Actions) -> None:
        """Sleep until a process ends, a signal arrives, or the plan's requeue time."""
        if actions.create:
            return
        timeout = TICK_SECONDS
        if actions.requeue_at is not None:
            timeout = min(timeout, max(0.0, (actions.requeue_at - datetime.now(UTC)).total_seconds()))
        self.wake.wait(timeout)
        self.wake.clear()
