"""Pure builder of a ScheduledPipeline's run: one Pipeline, owned by the schedule.

The run is the template (with its parameters) or the inline pipeline spec,
with the scheduled time filled in wherever `{{.scheduledDate}}`,
`{{.scheduledTime}}` or `{{.scheduledTimeLocal}}` appears in a value. It is
labelled with the schedule's name and annotated with the time it was due, so
the controller knows each run's place in the history after a restart.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dataworks.api import scheduledpipeline as api
from dataworks.core.kit.clock import ts
from dataworks.manifests.owner import Owner

_TIME = re.compile(r"\{\{\s*\.(scheduledDate|scheduledTime|scheduledTimeLocal)\s*\}\}")


def _times(due: datetime, tz: str) -> dict[str, str]:
    local = due.astimezone(ZoneInfo(tz))
    return {
        "scheduledDate": local.date().isoformat(),
        "scheduledTime": ts(due),
        "scheduledTimeLocal": local.isoformat(),
    }


def _fill(value: Any, times: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, times) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, times) for v in value]
    if isinstance(value, str):
        return _TIME.sub(lambda m: times[m[1]], value)
    return value


def run(owner: Owner, spec: api.ScheduledPipelineSpec, name: str, due: datetime) -> dict[str, Any]:
    """The Pipeline of the run due at `due`."""
    times = _times(due, spec.time_zone)
    if spec.template is not None:
        body: dict[str, Any] = {"template": spec.template, "parameters": _fill(spec.parameters or {}, times)}
    else:
        body = _fill(dict(spec.pipeline or {}), times)
    return {
        "apiVersion": "dataworks.io/v1",
        "kind": "Pipeline",
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": owner.labels(),
            "annotations": {api.SCHEDULED_AT: ts(due)},
            "ownerReferences": [owner.reference()],
        },
        "spec": body,
    }
