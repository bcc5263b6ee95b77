"""The TrainingJob controller: what a runtime needs to reconcile TrainingJobs.

It owns the config ConfigMap, the headless Service, the checkpoint claim and
one Indexed Job per attempt; it watches the Jobs. `observe` reads the pods of
the current attempt only when they matter: while not every worker runs (why
one waits) and once the attempt failed (which worker failed, and why). `plan`
validates the spec, calls `core.trainingjobs.planning`, and turns its Plan
into Actions with `manifests.trainingjobs`.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from dataworks.api import trainingjob as api
from dataworks.controllers.base import Children, Controller, Reader, meta_of, read_status
from dataworks.core.kit import conditions
from dataworks.core.kit import jobs as observations
from dataworks.core.kit.clock import ts
from dataworks.core.kit.labels import JOB_NAME
from dataworks.core.kit.plan import Actions, Event, Meta
from dataworks.core.trainingjobs import failures, planning, progress, workers
from dataworks.kube import errors
from dataworks.manifests import trainingjobs as manifests
from dataworks.manifests.owner import Owner
from dataworks.training.progress import Progress

DEFAULT_IMAGE_PATTERN = "training-image:{model}"  # the seed's


TAIL_LINES = 200


class Observer(Protocol):
    """The TrainingJob metrics (observability/training.py)."""

    def observe(self, key: tuple[str, str], old: Any, new: Any, spec: Any, now: datetime) -> None: ...
    def forget(self, key: tuple[str, str]) -> None: ...


@dataclass(frozen=True)
class Observed:
    pods: list[dict[str, Any]] | None = None  # the current attempt's pods, when they were read
    reported: Progress | None = None  # rank 0's last progress line, when its log was read
    polled: bool = False


class TrainingJobController(Controller):
    info = api.INFO
    owns = ("Job", "ConfigMap", "Service", "PersistentVolumeClaim")

    @property
    def watches(self) -> tuple[str, ...]:
        return ("Job",)  # the other children are created with each attempt and never change

    def __init__(self, image_pattern: str = DEFAULT_IMAGE_PATTERN, metrics: Observer | None = None) -> None:
        self.image_pattern, self.metrics = image_pattern, metrics
        self._tailed: dict[tuple[str, str], float] = {}  # when rank 0's log was last read
        self._written: dict[tuple[str, str], tuple[Any, Any, Any]] = {}  # (old, new, spec) of a plan

    def active(self, obj: dict[str, Any]) -> bool:
        return (obj.get("status") or {}).get("state") not in api.TERMINAL_STATES

    def child_fingerprint(self, kind: str, body: dict[str, Any]) -> Hashable:
        return (observations.job_view(body), (body.get("status") or {}).get("ready"))

    def _current(self, obj: dict[str, Any], children: Children) -> dict[str, Any] | None:
        status = obj.get("status") or {}
        name = planning.job_name(obj["metadata"]["name"], int(status.get("attempt") or 1))
        return next((j for j in children.get("Job", []) if j["metadata"]["name"] == name), None)

    async def observe(self, obj: dict[str, Any], children: Children, reader: Reader) -> Any:
        """The current attempt's pods, when some worker is not ready or the attempt failed; and,
        while it runs, rank 0's last progress line (its log's tail, at most every few seconds)."""
        job = self._current(obj, children)
        if job is None:
            return Observed()
        view = observations.job_view(job)
        spec = obj.get("spec") or {}
        ready = int((job.get("status") or {}).get("ready") or 0)
        ns = obj["metadata"]["namespace"]
        pods = None
        if view.state == "Failed" or (view.state == "Active" and ready < int(spec.get("numWorkers") or 1)):
            pods = await reader.list("Pod", ns, {JOB_NAME: view.name})
        key = (ns, obj["metadata"]["name"])
        tail = getattr(reader, "tail", None)
        due = time.monotonic() - self._tailed.get(key, 0.0) >= progress.PROGRESS_POLL_SECONDS
        # All workers ready, or a gang that ran and stays Running while some are not ready.
        running = pods is None or (obj.get("status") or {}).get("state") == "Running"
        # Once more when the Job succeeds: a last phase shorter than the poll (a resumed attempt)
        # would otherwise end without its progress, or its tracking run, in the status.
        ending = view.state == "Succeeded" and (obj.get("status") or {}).get("state") != "Succeeded"
        if tail is None or not (ending or (view.state == "Active" and due and running)):
            return Observed(pods=pods)
        self._tailed[key] = time.monotonic()
        listed = pods if pods is not None else await reader.list("Pod", ns, {JOB_NAME: view.name})
        phases = ("Running", "Succeeded") if ending else ("Running",)
        rank0 = [p for p in listed if workers.index_of(p) == 0 and workers.phase(p) in phases]
        if not rank0:
            return Observed(pods=pods)
        try:
            text = await tail(rank0[0]["metadata"]["name"], ns, "worker", TAIL_LINES)
        except errors.KubeError:
            return Observed(pods=pods)  # the log is not served (yet): the next poll reads it
        return Observed(pods=pods, reported=progress.last_progress(text), polled=True)

    def forget(self, key: tuple[str, str]) -> None:
        self._tailed.pop(key, None)
        self._written.pop(key, None)
        if self.metrics is not None:
            self.metrics.forget(key)

    def status_written(
        self, key: tuple[str, str], old: dict[str, Any] | None, new: dict[str, Any], now: datetime
    ) -> None:
        stashed = self._written.pop(key, None)
        if stashed is not None and self.metrics is not None:
            self.metrics.observe(key, *stashed, now)

    def plan(self, obj: dict[str, Any], children: Children, observed: Any, now: datetime) -> Actions:
        meta = obj.get("metadata") or {}
        m = meta_of(obj)
        old_raw = obj.get("status") or None
        old = read_status(api.TrainingJobStatus, old_raw)
        try:
            spec = api.TrainingJobSpec.model_validate(obj.get("spec") or {})
        except ValidationError as e:
            return _invalid(m, old, e, now)
        views = [observations.job_view(j) for j in children.get("Job", [])]
        job = self._current(obj, children)
        got: Observed = observed if isinstance(observed, Observed) else Observed()
        pods = got.pods or []
        seen = workers.observe(pods) if got.pods is not None else workers.Workers()
        if got.pods is None and job is not None:
            ready = int((job.get("status") or {}).get("ready") or 0)
            seen = workers.Workers(running=ready, started=ready)
        failure = None
        if job is not None and (view := observations.job_view(job)).state == "Failed":
            failure = failures.classify(pods, view.reason, view.message)
        p = planning.plan(m, spec, old, views, seen, failure=failure, now=now, reported=got.reported)
        owner = Owner(info=api.INFO, name=m.name, namespace=m.namespace, uid=m.uid)
        actions = Actions(events=list(p.events), requeue_at=p.requeue_at, delete_self=p.delete_self)
        if p.launch is not None:
            image = spec.image or self.image_pattern.format(model=spec.model)
            shared = [
                manifests.config_map(owner, spec),
                manifests.service(owner, spec),
                manifests.claim(owner, spec),
            ]
            queue = (meta.get("labels") or {}).get(manifests.KUEUE_QUEUE)
            launch = manifests.job(owner, spec, p.launch, image, queue)
            actions.create = [c for c in shared if c is not None] + [launch]
        actions.delete = [("Job", name) for name in p.delete]
        if p.suspend:
            actions.patch.append(("Job", p.suspend, {"spec": {"suspend": True}}))
        if p.resume:
            actions.patch.append(("Job", p.resume, {"spec": {"suspend": False}}))
        new = p.status.model_dump(by_alias=True, mode="json", exclude_none=True)
        if new != (old_raw or {}):
            actions.status = p.status.model_dump(by_alias=True, mode="json")
            self._written[(m.namespace, m.name)] = (old, p.status, spec)
        return actions


def _invalid(m: Meta, old: api.TrainingJobStatus | None, e: ValidationError, now: datetime) -> Actions:
    """A spec the CRD's schema let through but the models refuse: Failed, naming the field."""
    problems = [f"spec.{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
    message = "; ".join(problems[:5])
    st = old.model_copy(deep=True) if old is not None else api.TrainingJobStatus()
    if st.state == "Failed" and st.message == message:
        return Actions()
    st.state, st.message, st.completion_time = "Failed", message, ts(now)
    st.observed_generation = m.generation
    conditions.set_condition(
        st.conditions,
        "Failed",
        True,
        reason="ValidationFailed",
        message=message,
        now=now,
        generation=m.generation,
    )
    return Actions(
        status=st.model_dump(by_alias=True, mode="json"),
        events=[Event("Warning", "ValidationFailed", message)],
    )
