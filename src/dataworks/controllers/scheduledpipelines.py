"""The ScheduledPipeline controller: what a runtime needs to reconcile ScheduledPipelines.

It owns Pipelines, one per run. `plan` reads the runs from the children (their
phase, and the time each was due from its annotation), calls the pure planner
in `core.scheduledpipelines.planning`, and builds each new run with
`manifests.scheduledpipelines`. The runtime wakes it at the next due time
(`requeue_at`) and whenever a run changes.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from dataworks.api import scheduledpipeline as api
from dataworks.controllers.base import Children, Controller, meta_of, read_status
from dataworks.core.kit.clock import parse_ts
from dataworks.core.kit.plan import Actions, Event
from dataworks.core.scheduledpipelines import planning
from dataworks.manifests import scheduledpipelines as manifests
from dataworks.manifests.owner import Owner


class ScheduledPipelineController(Controller):
    info = api.INFO
    owns = ("Pipeline",)

    def child_fingerprint(self, kind: str, body: dict[str, Any]) -> Hashable:
        status, meta = body.get("status") or {}, body.get("metadata") or {}
        return (status.get("phase"), status.get("completionTime"), bool(meta.get("deletionTimestamp")))

    def plan(self, obj: dict[str, Any], children: Children, observed: Any, now: datetime) -> Actions:
        meta = obj.get("metadata") or {}
        m = meta_of(obj)
        old_raw = obj.get("status") or None
        old = read_status(api.ScheduledPipelineStatus, old_raw)
        try:
            spec = api.ScheduledPipelineSpec.model_validate(obj.get("spec") or {})
        except ValidationError as e:
            return _invalid(old, e)
        created = parse_ts(meta["creationTimestamp"]) if meta.get("creationTimestamp") else now
        p = planning.plan(m, created, spec, old, [_run(b) for b in children.get("Pipeline", [])], now=now)
        owner = Owner(info=api.INFO, name=m.name, namespace=m.namespace, uid=m.uid)
        actions = Actions(events=p.events, requeue_at=p.requeue_at)
        actions.create = [manifests.run(owner, spec, name, due) for name, due in p.create]
        actions.delete = [("Pipeline", name) for name in p.delete]
        new = p.status.model_dump(by_alias=True, mode="json", exclude_none=True)
        if new != (old_raw or {}):
            actions.status = p.status.model_dump(by_alias=True, mode="json")
        return actions


def _run(body: dict[str, Any]) -> planning.Run:
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    at = (meta.get("annotations") or {}).get(api.SCHEDULED_AT)
    return planning.Run(
        name=meta.get("name", ""),
        phase=status.get("phase"),
        scheduled_at=parse_ts(at) if at else None,
        completion_time=status.get("completionTime"),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def _invalid(old: api.ScheduledPipelineStatus | None, e: ValidationError) -> Actions:
    """A spec the CRD's schema let through but the model refuses (a time zone): named, no runs."""
    message = "; ".join(
        f"spec.{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()[:5]
    )
    if old is not None and old.message == message:
        return Actions()
    st = old.model_copy(deep=True) if old is not None else api.ScheduledPipelineStatus()
    st.message = message
    return Actions(
        status=st.model_dump(by_alias=True, mode="json"), events=[Event("Warning", "InvalidSpec", message)]
    )
