"""The Pipeline controller: what a runtime needs to reconcile Pipelines.

It owns Jobs (one per step attempt) and the ConfigMap of step definitions.
`observe` looks at the pods of a newly failed Job (OOMKilled, the worker's
error line) and of a newly succeeded one (its outputs, the termination
messages); `plan` validates the spec (cached per generation), calls the pure
planner in `core.pipelines.planning`, and turns its Plan into Actions with the
builders of `manifests.jobs`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Hashable
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from dataworks.api import pipeline as api
from dataworks.api import pipelinetemplate as tapi
from dataworks.api.config import OperatorConfig
from dataworks.controllers.base import Children, Controller, Reader, read_status
from dataworks.core.kit import jobs as observations
from dataworks.core.kit.labels import JOB_NAME
from dataworks.core.kit.plan import Actions, Meta
from dataworks.core.pipelines import dependencies, planning, templates, validation
from dataworks.core.pipelines.steps import SpecError
from dataworks.manifests import jobs as manifests

log = logging.getLogger("dataworks.operator")
Key = tuple[str, str]
TEMPLATE = "template:"  # the observed template's key among the observed Jobs (no Job has a ':')
DEPENDENCIES = "dependencies:"  # the observed pipelineDependencies' key
MAX_UPSTREAMS = 100  # pipelines read to follow dependencies (and find a cycle)


class Watcher(Protocol):
    """Told of every status change (failure notifications)."""

    def observe(
        self, where: Key, old: api.PipelineStatus | None, new: api.PipelineStatus, now: datetime
    ) -> None: ...


class StatusMetrics(Protocol):
    """The operator's metrics, as far as status changes feed them."""

    def observe_status(
        self,
        where: Key,
        old: api.PipelineStatus | None,
        new: api.PipelineStatus,
        types: dict[str, str],
        now: float,
    ) -> None: ...

    def forget(self, namespace: str, name: str) -> None: ...


class PipelineController(Controller):
    info = api.INFO
    owns = ("Job", "ConfigMap")

    @property
    def watches(self) -> tuple[str, ...]:
        return ("Job",)  # the ConfigMap is written once and never read back

    def __init__(
        self, config: OperatorConfig, metrics: StatusMetrics | None = None, notifier: Watcher | None = None
    ) -> None:
        self.config, self.metrics, self.notifier = config, metrics, notifier
        self.settings = planning.Settings(
            max_parallelism=config.pipelines.max_parallelism, step_events=config.pipelines.step_events
        )
        # Validation depends only on the spec, which changes only with the generation.
        self._checked: dict[Key, tuple[str, int, Any]] = {}
        # Pipelines waiting for others (pipelineDependencies): key -> the names they read.
        self._waits_on: dict[Key, set[str]] = {}
        # The parsed statuses of the last plan, for the hooks that run after its status write.
        self._written: dict[Key, tuple[api.PipelineStatus | None, planning.Plan]] = {}

    def child_fingerprint(self, kind: str, body: dict[str, Any]) -> Hashable:
        return observations.job_view(body) if kind == "Job" else None

    def _check(self, key: Key, meta: dict[str, Any], spec: dict[str, Any]) -> Any:
        uid, gen = meta.get("uid", ""), int(meta.get("generation") or 1)
        hit = self._checked.get(key)
        if hit is not None and hit[0] == uid and hit[1] == gen:
            return hit[2]
        result = validation.validate_raw(spec, max_parallelism=self.settings.max_parallelism)
        self._checked[key] = (uid, gen, result)
        return result

    async def observe(self, obj: dict[str, Any], children: Children, reader: Reader) -> Any:
        """What the pods of Jobs that ended since the last status said (job name -> fields of its
        JobView): a failed one's pod-level reason and message, a succeeded one's outputs (the
        termination messages, read once).

        Reading pods costs a request on the step transition, so outputs are read there only
        when a condition may need them (a step has `when:` or `config.conditions`); otherwise
        they are read together when the pipeline ends, before its last status write."""
        old = _parse_status(obj.get("status"))
        found: dict[str, dict[str, Any]] = {}
        wanted = (obj.get("spec") or {}).get("template")
        if isinstance(wanted, str) and (old is None or old.template is None or old.template.name != wanted):
            find = getattr(reader, "find", None)  # a reader that stores no templates has none
            body = await find(tapi.KIND, obj["metadata"]["namespace"], wanted) if find else None
            found[TEMPLATE] = {"body": body}
        if (obj.get("spec") or {}).get("pipelineDependencies") and not (old and old.start_time):
            found[DEPENDENCIES] = {"seen": await _upstreams(obj, reader)}
        jobs = [observations.job_view(body) for body in children.get("Job", [])]
        outputs_now = _conditional(obj, old) or _ending(old, jobs)
        for view in jobs:
            failed = view.state == "Failed" and not _already_failed(old, view)
            succeeded = outputs_now and view.state == "Succeeded" and not _outputs_read(old, view)
            if not view.step or not (failed or succeeded):
                continue
            pods = await reader.list("Pod", obj["metadata"]["namespace"], {JOB_NAME: view.name})
            if failed:
                found[view.name] = {
                    "pod_reason": observations.pod_failure_reason(pods),
                    "pod_message": observations.pod_failure_message(pods),
                }
            else:
                found[view.name] = {"pod_outputs": observations.pod_success_messages(pods)}
        return found

    def plan(self, obj: dict[str, Any], children: Children, observed: Any, now: datetime) -> Actions:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        old_raw = obj.get("status") or None
        old = _parse_status(old_raw)
        views = []
        observed = observed or {}
        for body in children.get("Job", []):
            view = observations.job_view(body)
            if not view.step:
                continue
            if view.name in observed:
                view = dataclasses.replace(view, **observed[view.name])
            views.append(view)
        raw = obj.get("spec") or {}
        spec, expansion, problems = _expanded(raw, old, observed.get(TEMPLATE), key[0])
        checked = (None, problems) if problems else self._check(key, meta, spec)
        gate = None
        if checked[0] is not None and DEPENDENCIES in observed:
            seen = observed[DEPENDENCIES]["seen"]
            gate = dependencies.gate(key[1], checked[0].spec.pipeline_dependencies, seen, now)
        if gate is not None and not gate.ready:
            self._waits_on[key] = {*seen, key[1]}
        else:
            self._waits_on.pop(key, None)
        p = planning.plan(
            Meta(
                name=key[1],
                namespace=key[0],
                generation=int(meta.get("generation") or 1),
                uid=meta.get("uid", ""),
            ),
            checked,
            old,
            views,
            now=now,
            settings=self.settings,
            gate=gate,
        )
        if expansion is not None:
            p.status.template = expansion  # recorded once: a later edit of the template changes nothing here
        owner = manifests.Owner(info=api.INFO, name=key[1], namespace=key[0], uid=meta.get("uid", ""))
        actions = Actions(events=list(p.events), requeue_at=p.requeue_at, delete_self=p.delete_pipeline)
        if p.create and p.validated is not None:
            if any(launch.step.type != "container" for launch in p.create):
                actions.create.append(manifests.steps_config_map(owner, p.validated.steps))
            actions.create += [
                manifests.step_job(owner, launch, p.validated.spec, self.config.pipelines)
                for launch in p.create
            ]
        actions.delete = [("Job", name) for name in p.delete]
        actions.patch = [("Job", name, {"spec": {"suspend": True}}) for name in p.suspend] + [
            ("Job", name, {"spec": {"suspend": False}}) for name in p.resume
        ]
        # The API server keeps no nulls, so the stored status compares with the one without them;
        # the patch itself carries the nulls, which remove fields that were cleared.
        if p.status.model_dump(by_alias=True, mode="json", exclude_none=True) != (old_raw or {}):
            actions.status = p.status.model_dump(by_alias=True, mode="json")
            self._written[key] = (old, p)
        return actions

    def status_written(
        self, key: Key, old: dict[str, Any] | None, new: dict[str, Any], now: datetime
    ) -> None:
        stashed = self._written.pop(key, None)
        if stashed is None:
            return
        before, p = stashed
        if self.notifier is not None:
            self.notifier.observe(key, before, p.status, now)
        if self.metrics is not None and p.validated is not None:
            types = {sd.name: sd.type for sd in p.validated.steps}
            self.metrics.observe_status(key, before, p.status, types, time.time())

    def related(self, body: dict[str, Any]) -> list[Key]:
        """The pipelines waiting for this one (pipelineDependencies): a change to it wakes them."""
        meta = body.get("metadata") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        return [k for k, names in self._waits_on.items() if k[0] == ns and name in names and k[1] != name]

    def forget(self, key: Key) -> None:
        self._waits_on.pop(key, None)
        self._checked.pop(key, None)
        self._written.pop(key, None)
        if self.metrics is not None:
            self.metrics.forget(*key)


def _already_failed(old: api.PipelineStatus | None, view: observations.JobView) -> bool:
    """The failure of this Job is already in the status: no need to look at its pods again."""
    for st in old.step_statuses if old else []:
        if st.name == view.step and st.attempt == view.attempt and st.phase == "Failed":
            return True
    return False


async def _upstreams(obj: dict[str, Any], reader: Reader) -> dict[str, dependencies.Upstream]:
    """The pipelines `obj` depends on, and theirs in turn (to find a cycle), as seen now."""
    find = getattr(reader, "find", None)
    ns, own = obj["metadata"]["namespace"], obj["metadata"]["name"]
    todo = [str(d.get("name")) for d in (obj.get("spec") or {}).get("pipelineDependencies") or []]
    seen: dict[str, dependencies.Upstream] = {}
    while todo and len(seen) < MAX_UPSTREAMS:
        name = todo.pop()
        if name in seen or name == own:
            continue
        body = await find(api.KIND, ns, name) if find is not None else None
        if body is None:
            seen[name] = dependencies.Upstream(name, found=False)
            continue
        st, spec = body.get("status") or {}, body.get("spec") or {}
        wanted = tuple(str(d.get("name")) for d in spec.get("pipelineDependencies") or [])
        seen[name] = dependencies.Upstream(name, True, st.get("phase"), st.get("completionTime"), wanted)
        todo += wanted
    return seen


def _expanded(
    raw: dict[str, Any], old: api.PipelineStatus | None, seen: dict[str, Any] | None, namespace: str
) -> tuple[dict[str, Any], api.TemplateExpansion | None, list[SpecError]]:
    """The spec a pipeline runs: its own, or its template's steps as recorded in its status, or
    as expanded now from the template observed (returned, to be recorded); or the problems."""
    name = raw.get("template")
    if not isinstance(name, str):
        return raw, None, []
    own = {k: v for k, v in raw.items() if k not in {"template", "parameters", "steps"}}
    if old is not None and old.template is not None and old.template.name == name:
        return {**own, "steps": old.template.steps}, None, []
    body = (seen or {}).get("body")
    if body is None:
        why = f"PipelineTemplate {name!r} not found in namespace {namespace}; create it first"
        return raw, None, [SpecError(None, "template", why)]
    try:
        template = tapi.PipelineTemplateSpec.model_validate(body.get("spec") or {})
    except ValidationError as e:
        where = ", ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()[:3])
        return raw, None, [SpecError(None, "template", f"PipelineTemplate {name!r} is invalid: {where}")]
    spec, values, problems = templates.expand(raw, template, name)
    if spec is None:
        return raw, None, problems
    version = (body.get("metadata") or {}).get("resourceVersion")
    expansion = api.TemplateExpansion(
        name=name, resource_version=version, parameters=values, steps=spec["steps"]
    )
    return spec, expansion, []


def _conditional(obj: dict[str, Any], old: api.PipelineStatus | None) -> bool:
    """Whether a step of the pipeline (or of its expanded template) has a condition."""
    steps = (obj.get("spec") or {}).get("steps") or (old.template.steps if old and old.template else [])
    return any(s.get("when") or (s.get("config") or {}).get("conditions") for s in steps)


def _ending(old: api.PipelineStatus | None, jobs: list[observations.JobView]) -> bool:
    """Whether this reconcile may end the pipeline (or it has ended): no step waits, and every
    running step's Job has ended."""
    if old is None:
        return False
    if old.phase in api.TERMINAL_PHASES:
        return True
    ended = {(j.step, j.attempt) for j in jobs if j.state in {"Succeeded", "Failed"}}
    return all(
        st.phase in api.TERMINAL_STEP_PHASES or (st.phase == "Running" and (st.name, st.attempt) in ended)
        for st in old.step_statuses
    )


def _outputs_read(old: api.PipelineStatus | None, view: observations.JobView) -> bool:
    """This Job's step is recorded Completed with its outputs: its pods need no second look."""
    for st in old.step_statuses if old else []:
        if st.name == view.step and st.attempt == view.attempt:
            return st.phase == "Completed" and st.outputs is not None
    return False


def _parse_status(raw: dict[str, Any] | None) -> api.PipelineStatus | None:
    return read_status(api.PipelineStatus, raw)
