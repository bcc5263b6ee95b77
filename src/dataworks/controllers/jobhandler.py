"""The job-completion handler: what a runtime needs to archive labelled Jobs.

It reconciles batch/v1 Jobs labelled `job-handler/enabled: "true"` and
watches their pods and archives (both carry the `job-name` label). `observe`
has each container's log read as soon as it has terminated (by the Capture
it is given, operator/logcapture.py, into bounded memory), because the pod
may be deleted right after the Job finishes; `plan` is
`core.jobhandler.planning`, and `plan_deleted` archives a finished Job that
someone else deleted first. What was read is kept per Job run until its
archive is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol

from dataworks.api import jobhandler as names
from dataworks.api.jobhandler import JobHandlerConfig
from dataworks.controllers.base import Children, Controller, Reader
from dataworks.core.jobhandler import archive, capture, planning
from dataworks.core.jobhandler.capture import LogSource
from dataworks.core.jobhandler.fitting import Fitted
from dataworks.core.jobhandler.logbuffer import Captured
from dataworks.core.kit import clock
from dataworks.core.kit.plan import Actions

log = logging.getLogger("dataworks.operator")
Key = tuple[str, str]


class Capture(Protocol):
    """Reads container logs (operator/logcapture.py): each source's kept log and full copy's URL."""

    async def read_all(
        self, reader: Reader, job: dict[str, Any], sources: list[LogSource]
    ) -> list[tuple[Captured, str]]: ...


class HandlerMetrics(Protocol):
    def archived(self, status: str, fitted: Fitted | None, latency: float | None) -> None: ...


@dataclass
class _Run:
    """What was read of one Job run."""

    uid: str
    logs: archive.Logs = field(default_factory=archive.Logs)
    planned: Fitted | None = None
    creating: bool = False


class JobHandlerController(Controller):
    info = names.JOB_INFO
    owns = ("ConfigMap",)
    selector: Mapping[str, str] | None = MappingProxyType({names.ENABLED: "true"})

    @property
    def watches(self) -> tuple[str, ...]:
        return ("ConfigMap", "Pod")

    def __init__(
        self,
        capture: Capture,
        config: JobHandlerConfig | None = None,
        metrics: HandlerMetrics | None = None,
    ) -> None:
        self.capture, self.metrics = capture, metrics
        self.config = config or JobHandlerConfig()
        self.settings = planning.Settings(budget=self.config.log_budget_bytes)
        self._runs: dict[Key, _Run] = {}

    def active(self, obj: dict[str, Any]) -> bool:
        return not planning.handled(obj)

    def forget(self, key: Key) -> None:
        self._runs.pop(key, None)

    def child_fingerprint(self, kind: str, body: dict[str, Any]) -> Hashable:
        if kind == "ConfigMap":  # an archive never changes: only its existence matters
            meta = body.get("metadata") or {}
            return (meta.get("name"), (meta.get("labels") or {}).get(names.JOB_UID))
        return super().child_fingerprint(kind, body)

    def _run(self, job: dict[str, Any]) -> _Run:
        meta = job.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        run = self._runs.get(key)
        if run is None or run.uid != meta.get("uid"):
            run = self._runs[key] = _Run(uid=meta.get("uid", ""))
        return run

    async def observe(self, obj: dict[str, Any], children: Children, reader: Reader) -> archive.Logs:
        """Read every container instance that terminated since the last reconcile."""
        run = self._run(obj)
        uid = run.uid
        if not run.creating and any(_holds(a, uid) for a in children.get("ConfigMap", [])):
            run.logs = archive.Logs()  # archived: a failed Job may stay for days, its logs need not
            return run.logs
        pods = [p for p in children.get("Pod", []) if _owned_by(p, uid)]
        for pod in pods:
            run.logs.pods[(pod.get("metadata") or {}).get("uid", "")] = pod
        due = capture.due(pods, set(run.logs.captured))
        if due:
            results = await self.capture.read_all(reader, obj, due)
            for src, (captured, url) in zip(due, results, strict=True):
                run.logs.sources[src.key] = src
                run.logs.captured[src.key] = captured
                if url:
                    run.logs.offloaded[src.key] = url
        return run.logs

    def plan(self, obj: dict[str, Any], children: Children, observed: Any, now: datetime) -> Actions:
        run = self._run(obj)
        uid = run.uid
        archives = children.get("ConfigMap", [])
        if run.creating and any(_holds(a, uid) for a in archives):
            run.creating = False  # the archive this run planned is stored: count it once
            if self.metrics is not None:
                self.metrics.archived(_outcome(obj), run.planned, _latency(obj, now))
        pods = [p for p in children.get("Pod", []) if _owned_by(p, uid)]
        planned = planning.plan(obj, archives, pods, observed or run.logs, settings=self.settings, now=now)
        if planned.actions.create:
            run.creating, run.planned = True, planned.fitted
        return planned.actions

    def plan_deleted(self, obj: dict[str, Any], children: Children, now: datetime) -> Actions | None:
        """A finished Job deleted before it was archived (ttlSecondsAfterFinished: 0, a user):
        archive what was read of it."""
        run = self._run(obj)
        planned = planning.plan_gone(
            obj, children.get("ConfigMap", []), run.logs, settings=self.settings, now=now
        )
        if planned.actions.create and self.metrics is not None:
            self.metrics.archived(_outcome(obj), planned.fitted, _latency(obj, now))
        return planned.actions


def _owned_by(pod: dict[str, Any], uid: str) -> bool:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("uid") == uid for r in refs)


def _holds(cm: dict[str, Any], uid: str) -> bool:
    return bool(((cm.get("metadata") or {}).get("labels") or {}).get(names.JOB_UID) == uid)


def _outcome(job: dict[str, Any]) -> str:
    return planning.finished(job, []) or "unknown"


def _latency(job: dict[str, Any], now: datetime) -> float | None:
    """Seconds from the Job's final condition to now (the archive seen stored)."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if (
            c.get("type") in ("Complete", "Failed")
            and c.get("status") == "True"
            and c.get("lastTransitionTime")
        ):
            return max(0.0, (now - clock.parse_ts(str(c["lastTransitionTime"]))).total_seconds())
    return None
