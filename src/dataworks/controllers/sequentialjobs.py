"""The SequentialJob controller: what a runtime needs to reconcile SequentialJobs.

It owns Jobs, one per run of each step. `observe` reads the pods of each Job
that finished since the last status (the step's output, from its container's
termination message, and why it failed); `plan` validates the spec (cached
per generation), calls the pure planner in `core.sequentialjobs.planning`,
and turns its Plan into Actions with `manifests.sequentialjobs`.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from datetime import datetime
from typing import Any

from dataworks.api import sequentialjob as api
from dataworks.controllers.base import Children, Controller, Reader, read_status
from dataworks.core.kit import jobs as observations
from dataworks.core.kit.labels import JOB_NAME
from dataworks.core.kit.plan import Actions, Meta
from dataworks.core.sequentialjobs import outputs, planning, validation
from dataworks.core.sequentialjobs.work import PodFacts
from dataworks.manifests import sequentialjobs as manifests
from dataworks.manifests.owner import Owner

log = logging.getLogger("dataworks.operator")
Key = tuple[str, str]


class SequentialJobController(Controller):
    info = api.INFO
    owns = ("Job",)

    def __init__(self) -> None:
        # Validation depends only on the spec and name, which change only with the generation.
        self._checked: dict[Key, tuple[str, int, Any]] = {}

    def child_fingerprint(self, kind: str, body: dict[str, Any]) -> Hashable:
        return observations.job_view(body)

    def _check(self, key: Key, meta: dict[str, Any], spec: dict[str, Any]) -> Any:
        uid, gen = meta.get("uid", ""), int(meta.get("generation") or 1)
        hit = self._checked.get(key)
        if hit is not None and hit[0] == uid and hit[1] == gen:
            return hit[2]
        result = validation.validate_raw(spec, key[1])
        self._checked[key] = (uid, gen, result)
        return result

    async def observe(self, obj: dict[str, Any], children: Children, reader: Reader) -> Any:
        """What the pods of finished Jobs said (Job name -> PodFacts), for the Job of each step's
        current run: a failed one's before its failure is recorded, the last step's before the
        sequence completes, any other's once its step is recorded Completed (core outputs)."""
        steps = {s.get("name"): s for s in (obj.get("status") or {}).get("steps") or []}
        containers = [c.get("name") for c in (obj.get("spec") or {}).get("containers") or []]
        found: dict[str, PodFacts] = {}
        for body in children.get("Job", []):
            view = observations.job_view(body)
            if view.state not in {"Succeeded", "Failed"} or view.step not in containers:
                continue
            st = steps.get(view.step) or {}
            if st and st.get("attempt", 1) != view.attempt:
                continue  # an earlier run's Job, which a re-run replaced
            recorded = st.get("jobName") == view.name and st.get("phase") in {"Completed", "Failed"}
            # Recorded before its pods were read (no output yet), or to be read before it is recorded.
            wanted = (
                st.get("output") is None
                if recorded
                else view.state == "Failed" or view.step == containers[-1]
            )
            if wanted:
                pods = await reader.list("Pod", obj["metadata"]["namespace"], {JOB_NAME: view.name})
                found[view.name] = outputs.facts_of(pods, succeeded=view.state == "Succeeded")
        return found

    def plan(self, obj: dict[str, Any], children: Children, observed: Any, now: datetime) -> Actions:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        old_raw = obj.get("status") or None
        views = [v for v in (observations.job_view(b) for b in children.get("Job", [])) if v.step]
        checked = self._check(key, meta, obj.get("spec") or {})
        p = planning.plan(
            Meta(
                name=key[1],
                namespace=key[0],
                generation=int(meta.get("generation") or 1),
                uid=meta.get("uid", ""),
            ),
            checked,
            _parse_status(old_raw),
            views,
            now=now,
            facts=observed or {},
        )
        owner = Owner(info=api.INFO, name=key[1], namespace=key[0], uid=meta.get("uid", ""))
        actions = Actions(events=list(p.events), requeue_at=p.requeue_at, delete_self=p.delete_self)
        validated = checked[0]
        if validated is not None:
            actions.create = [manifests.step_job(owner, validated.spec, launch) for launch in p.create]
        actions.delete = [("Job", name) for name in p.delete]
        actions.patch = [("Job", name, {"spec": {"suspend": True}}) for name in p.suspend] + [
            ("Job", name, {"spec": {"suspend": False}}) for name in p.resume
        ]
        # The API server keeps no nulls, so the stored status compares with the one without them;
        # the patch itself carries the nulls, which remove fields that were cleared.
        if p.status.model_dump(by_alias=True, mode="json", exclude_none=True) != (old_raw or {}):
            actions.status = p.status.model_dump(by_alias=True, mode="json")
        return actions

    def forget(self, key: Key) -> None:
        self._checked.pop(key, None)


def _parse_status(raw: dict[str, Any] | None) -> api.SequentialJobStatus | None:
    return read_status(api.SequentialJobStatus, raw)
