"""The Pipeline controller (I/O layer): observe, call core.planning, apply the Plan.

One reconcile reads the Pipeline and its Jobs, asks the planner for a Plan,
creates/deletes/suspends Jobs, writes the status once, and only after that
write succeeds queues the Plan's events (operator/eventing.py posts them).
Reconciles of one pipeline never run concurrently; a trigger that arrives
during a reconcile runs one more pass.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx2
from lightkube import ApiError, AsyncClient, codecs
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Pod
from lightkube.types import CascadeType, PatchType

from dataworks.api import pipeline as api
from dataworks.api.config import OperatorConfig
from dataworks.core import observations, planning, validation
from dataworks.kube.resources import Pipeline
from dataworks.manifests import jobs as manifests
from dataworks.observability.metrics import Metrics
from dataworks.operator.eventing import EventSender
from dataworks.operator.notifying import Notifier

log = logging.getLogger("dataworks.operator")
# Which pipeline, and which reconcile of it, the current task works for: added to every log record.
context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("reconcile", default=None)


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    again: bool = False


def _newer(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    """Whether object b is at least as new as a, by resourceVersion.

    resourceVersions are opaque in general but etcd-backed servers issue
    increasing integers; when they are not integers, the later arrival wins.
    """
    if a is None:
        return True
    ra, rb = (
        (a.get("metadata") or {}).get("resourceVersion"),
        (b.get("metadata") or {}).get("resourceVersion"),
    )
    try:
        return int(rb) >= int(ra)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True


class Reconciler:
    """Reconciles pipelines; safe to trigger from any number of events.

    Pipelines and their Jobs are cached from the watch events kopf delivers,
    and from the responses to our own writes, so a reconcile needs no read
    before it acts. A pipeline not in the cache (e.g. on resync) is read.
    """

    def __init__(
        self,
        client: AsyncClient,
        config: OperatorConfig,
        metrics: Metrics | None = None,
        notifier: Notifier | None = None,
        events: EventSender | None = None,
    ) -> None:
        self.client, self.config = client, config
        self.events = events or EventSender(client)
        self.settings = planning.Settings(
            max_parallelism=config.max_parallelism, step_events=config.step_events
        )
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._pipelines: dict[tuple[str, str], dict[str, Any]] = {}
        self._jobs: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._jobs_listed: set[tuple[str, str]] = set()
        # Validation depends only on the spec, which changes only with the generation.
        self._checked: dict[tuple[str, str], tuple[str, int, Any]] = {}
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._refused: dict[tuple[str, str], str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.metrics = metrics
        self.notifier = notifier
        if metrics is not None:
            metrics.active.set_function(self._active_count)
            metrics.queue_depth.set_function(lambda: sum(1 for s in self._slots.values() if s.lock.locked()))

    def _active_count(self) -> int:
        terminal = {"Completed", "Failed", "Cancelled"}
        return sum(
            1 for p in self._pipelines.values() if ((p.get("status") or {}).get("phase")) not in terminal
        )

    def _check(self, namespace: str, name: str, meta: dict[str, Any], spec: dict[str, Any]) -> Any:
        key, uid, gen = (namespace, name), meta.get("uid", ""), int(meta.get("generation") or 1)
        hit = self._checked.get(key)
        if hit is not None and hit[0] == uid and hit[1] == gen:
            return hit[2]
        result = validation.validate_raw(spec, max_parallelism=self.settings.max_parallelism)
        self._checked[key] = (uid, gen, result)
        return result

    def observe_pipeline(self, body: dict[str, Any], deleted: bool = False) -> bool:
        """Cache a Pipeline; True when it is news (not the echo of our own write)."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if deleted:
            self._pipelines.pop(key, None)
            self._checked.pop(key, None)
            self._jobs.pop(key, None)
            self._jobs_listed.discard(key)
            if self.metrics is not None:
                self.metrics.forget(*key)
            return False
        before = self._pipelines.get(key)
        if before is not None and (before.get("metadata") or {}).get("resourceVersion") == meta.get(
            "resourceVersion"
        ):
            return False
        if not _newer(before, body):
            return False
        self._pipelines[key] = body
        return True

    def observe_job(self, body: dict[str, Any], deleted: bool = False) -> bool:
        """Cache a Job; True when what the planner sees of it changed."""
        meta = body.get("metadata") or {}
        pipeline = (meta.get("labels") or {}).get(observations.LABEL_PIPELINE)
        if not pipeline:
            return False
        jobs = self._jobs.setdefault((meta.get("namespace", ""), pipeline), {})
        name = meta.get("name", "")
        before = jobs.get(name)
        if deleted:
            jobs.pop(name, None)
            return before is not None
        if not _newer(before, body):
            return False
        jobs[name] = body
        return before is None or observations.job_view(before) != observations.job_view(body)

    async def _pipeline(self, namespace: str, name: str) -> dict[str, Any]:
        cached = self._pipelines.get((namespace, name))
        if cached is not None:
            return cached
        obj = await self.client.get(Pipeline, name, namespace=namespace)
        raw: dict[str, Any] = obj.to_dict()  # type: ignore[no-untyped-call]
        self.observe_pipeline(raw)
        return raw

    async def _job_bodies(self, namespace: str, name: str) -> list[dict[str, Any]]:
        key = (namespace, name)
        if key not in self._jobs_listed:  # first sight: list once, then events keep it current
            async for job in self.client.list(
                Job, namespace=namespace, labels={observations.LABEL_PIPELINE: name}
            ):
                self.observe_job(job.to_dict())
            self._jobs_listed.add(key)
        return list(self._jobs.get(key, {}).values())

    async def trigger(self, namespace: str, name: str) -> None:
        """Reconcile now, or once more after the reconcile in progress."""
        slot = self._slots.setdefault((namespace, name), _Slot())
        if slot.lock.locked():
            slot.again = True
            return
        async with slot.lock:
            slot.again = True
            while slot.again:
                slot.again = False
                started = time.perf_counter()
                context.set({"namespace": namespace, "pipeline": name, "reconcile": uuid.uuid4().hex[:8]})
                try:
                    await self.reconcile(namespace, name)
                except ApiError as e:
                    if e.status.code == 404:
                        self._slots.pop((namespace, name), None)
                        return
                    self._count_error(f"ApiError{e.status.code}")
                    log.warning("reconcile of %s/%s failed: %s", namespace, name, e.status.message)
                except httpx2.HTTPError as e:  # in transit, through every retry of the client
                    self._count_error(type(e).__name__)
                    log.warning("reconcile of %s/%s failed: %s: %s", namespace, name, type(e).__name__, e)
                except Exception as e:
                    self._count_error(type(e).__name__)
                    log.exception("reconcile of %s/%s failed", namespace, name)
                finally:
                    if self.metrics is not None:
                        self.metrics.reconcile_seconds.observe(time.perf_counter() - started)

    def _count_error(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.reconcile_errors.labels(error=kind).inc()

    async def reconcile(self, namespace: str, name: str) -> planning.Plan | None:
        raw = await self._pipeline(namespace, name)
        meta = raw.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return None  # ownerReferences let the garbage collector remove the children
        old_raw = raw.get("status") or None
        old = _parse_status(old_raw)
        views = []
        for body in await self._job_bodies(namespace, name):
            view = observations.job_view(body)
            if view is not None and view.state == "Failed" and not _already_failed(old, view):
                view = await self._with_pod_reason(namespace, view)
            if view is not None:
                views.append(view)
        p = planning.plan(
            planning.Meta(name=name, namespace=namespace, generation=int(meta.get("generation") or 1)),
            raw.get("spec") or {},
            old,
            views,
            now=datetime.now(UTC),
            settings=self.settings,
            checked=self._check(namespace, name, meta, raw.get("spec") or {}),
        )
        owner = manifests.Owner(name=name, namespace=namespace, uid=meta.get("uid", ""))
        try:
            await self._apply_children(owner, p)
        except ApiError as e:
            if e.status.code not in (403, 422):
                raise
            # The API server refuses what we built (a quota, a policy, an invalid
            # combination): say so on the pipeline, once per distinct refusal.
            text = f"cannot create the step's Job: {e.status.message}"
            if self._refused.get((namespace, name)) != text:
                self._refused[(namespace, name)] = text
                await self.events.send(owner, planning.Event("Warning", "FailedCreate", text))
            raise
        # The API server keeps no nulls, so the stored status compares with the one without them;
        # the patch itself carries the nulls, which remove fields that were cleared.
        if p.status.model_dump(by_alias=True, mode="json", exclude_none=True) != (old_raw or {}):
            new_status = p.status.model_dump(by_alias=True, mode="json")
            written = await self.client.patch(
                Pipeline.Status, name, {"status": new_status}, namespace=namespace, patch_type=PatchType.MERGE
            )
            self.observe_pipeline(written.to_dict())  # type: ignore[no-untyped-call]
            if self.notifier is not None:
                self.notifier.observe((namespace, name), old, p.status, datetime.now(UTC))
            if self.metrics is not None and p.validated is not None:
                types = {sd.name: sd.type for sd in p.validated.steps}
                self.metrics.observe_status((namespace, name), old, p.status, types, time.time())
        for event in p.events:
            await self.events.send(owner, event)
            log.info(event.message, extra={"reason": event.reason, "step": event.step})
        if p.delete_pipeline:
            log.info("deleting %s/%s: ttlSecondsAfterFinished has passed", namespace, name)
            await self.client.delete(Pipeline, name, namespace=namespace)
        elif p.requeue_at is not None:
            self._wake_at(namespace, name, p.requeue_at)
        return p

    def _wake_at(self, namespace: str, name: str, when: datetime) -> None:
        """Reconcile again at `when` (a deadline or a TTL), whatever else happens."""
        key = (namespace, name)
        previous = self._timers.pop(key, None)
        if previous is not None:
            previous.cancel()
        delay = max(0.0, (when - datetime.now(UTC)).total_seconds())
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.pop(key, None)
            task = loop.create_task(self.trigger(namespace, name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._timers[key] = loop.call_later(delay, fire)

    async def _with_pod_reason(self, namespace: str, view: observations.JobView) -> observations.JobView:
        pods = [
            p.to_dict()
            async for p in self.client.list(
                Pod, namespace=namespace, labels={"batch.kubernetes.io/job-name": view.name}
            )
        ]
        return dataclasses.replace(
            view,
            pod_reason=observations.pod_failure_reason(pods),
            pod_message=observations.pod_failure_message(pods),
        )

    async def _apply_children(self, owner: manifests.Owner, p: planning.Plan) -> None:
        assert p.validated is not None or not p.create
        if (
            p.create
            and p.validated is not None
            and any(launch.step.type != "container" for launch in p.create)
        ):
            cm = manifests.steps_config_map(owner, p.validated.steps)
            await self._create(cm)
        for launch in p.create:
            assert p.validated is not None
            await self._create(manifests.step_job(owner, launch, p.validated.spec, self.config))
        for job_name in p.delete:
            try:
                await self.client.delete(
                    Job, job_name, namespace=owner.namespace, cascade=CascadeType.BACKGROUND
                )
            except ApiError as e:
                if e.status.code != 404:
                    raise
        for job_name, suspend in [(n, True) for n in p.suspend] + [(n, False) for n in p.resume]:
            await self.client.patch(
                Job,
                job_name,
                {"spec": {"suspend": suspend}},
                namespace=owner.namespace,
                patch_type=PatchType.MERGE,
            )

    async def _create(self, manifest: dict[str, Any]) -> None:
        try:
            created = await self.client.create(codecs.from_dict(manifest))
            if manifest["kind"] == "Job":
                self.observe_job(created.to_dict())  # type: ignore[no-untyped-call]
        except ApiError as e:
            if e.status.code != 409:
                raise
            # AlreadyExists: adopt it, unless it belongs to someone else.
            md = manifest["metadata"]
            existing: Job | ConfigMap
            if manifest["kind"] == "Job":
                existing = await self.client.get(Job, md["name"], namespace=md["namespace"])
            else:
                existing = await self.client.get(ConfigMap, md["name"], namespace=md["namespace"])
            refs = (existing.metadata.ownerReferences if existing.metadata else None) or []
            mine = md["ownerReferences"][0]["uid"]
            if not any(r.uid == mine for r in refs):
                raise RuntimeError(
                    f"{manifest['kind']} {md['name']} exists but is not owned by this pipeline"
                ) from e


def _already_failed(old: api.PipelineStatus | None, view: observations.JobView) -> bool:
    """The failure of this Job is already in the status: no need to look at its pods again."""
    for st in old.step_statuses if old else []:
        if st.name == view.step and st.attempt == view.attempt and st.phase == "Failed":
            return True
    return False


def _parse_status(raw: dict[str, Any] | None) -> api.PipelineStatus | None:
    if not raw:
        return None
    try:
        return api.PipelineStatus.model_validate(raw)
    except ValueError:
        log.warning("ignoring an unreadable status")
        return None
