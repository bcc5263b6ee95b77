"""The archive of one finished Job: a ConfigMap that outlives it (pure layer).

It holds the seed's keys (`job-name`, `completion-time`, `status`, `logs`),
a `result.json` with every pod's and container's end state, and the logs as
`fitting` decided: text in `logs`, or gzip in binaryData `logs.gz` (then
`logs` says so). It is named `<job>-results`; a Job created again under the
same name gets `<job>-results-<uid8>`, so no run's archive overwrites
another's. Its `dataworks.io/job-uid` label makes it the one archive of that run.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dataworks.api import jobhandler as names
from dataworks.core.jobhandler.capture import LogSource, SourceKey
from dataworks.core.jobhandler.fitting import Fitted, Section, fit
from dataworks.core.jobhandler.logbuffer import Captured
from dataworks.core.kit.clock import ts
from dataworks.core.kit.jobs import JobView


@dataclass(frozen=True)
class Logs:
    """What the handler has read of one Job's pods so far."""

    sources: dict[SourceKey, LogSource] = field(default_factory=dict)
    captured: dict[SourceKey, Captured] = field(default_factory=dict)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> the last status seen
    offloaded: dict[SourceKey, str] = field(default_factory=dict)  # the full log's URL


def archive_name(job: str, uid: str, taken: set[str]) -> str:
    """`<job>-results`, or `<job>-results-<uid8>` when a previous run of that name holds it."""
    name = f"{job}-results"
    return name if name not in taken else f"{name}-{uid[:8]}"


def _header(src: LogSource, restarts: int) -> str:
    text = f"pod/{src.pod}/{src.container}"
    if src.init:
        text += " (init)"
    if restarts or src.previous:
        text += f" (run {src.instance + 1} of {restarts + 1})"
    return text


def _restarts(pods: dict[str, dict[str, Any]], src: LogSource) -> int:
    status = (pods.get(src.pod_uid) or {}).get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        if cs.get("name") == src.container:
            return int(cs.get("restartCount") or 0)
    return src.instance


def sections(logs: Logs) -> list[tuple[LogSource, Section]]:
    """Every captured log, by pod (in creation order), init containers first, oldest run first."""
    order = {uid: i for i, uid in enumerate(logs.pods)}
    keys = sorted(
        logs.captured,
        key=lambda k: (
            order.get(k[0], len(order)),
            logs.sources[k].pod,
            not logs.sources[k].init,
            k[1],
            k[2],
        ),
    )
    return [
        (
            logs.sources[k],
            Section(_header(logs.sources[k], _restarts(logs.pods, logs.sources[k])), logs.captured[k]),
        )
        for k in keys
    ]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    out = []
    for init, statuses in (
        (True, status.get("initContainerStatuses")),
        (False, status.get("containerStatuses")),
    ):
        for cs in statuses or []:
            state = cs.get("state") or {}
            term = state.get("terminated") or (cs.get("lastState") or {}).get("terminated") or {}
            out.append(
                {
                    "name": cs.get("name"),
                    "init": init,
                    "state": next(iter(state), "unknown"),
                    "exitCode": term.get("exitCode"),
                    "reason": term.get("reason") or (state.get("waiting") or {}).get("reason"),
                    "restartCount": int(cs.get("restartCount") or 0),
                    "startedAt": term.get("startedAt") or (state.get("running") or {}).get("startedAt"),
                    "finishedAt": term.get("finishedAt"),
                    "message": term.get("message"),
                }
            )
    return out


def _pods(logs: Logs) -> list[dict[str, Any]]:
    out = []
    for uid, pod in logs.pods.items():
        meta = pod.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        out.append(
            {
                "name": meta.get("name"),
                "uid": uid,
                "index": annotations.get("batch.kubernetes.io/job-completion-index"),
                "phase": (pod.get("status") or {}).get("phase"),
                "containers": _containers(pod),
            }
        )
    return out


def build(
    job: dict[str, Any], view: JobView, logs: Logs, name: str, *, budget: int, now: datetime
) -> tuple[dict[str, Any], Fitted | None]:
    """The archive ConfigMap of a finished Job, and how its logs were fitted (None: no logs)."""
    meta = job.get("metadata") or {}
    status = "completed" if view.state == "Succeeded" else "failed"
    completed = view.completion_time or _finished_at(job) or ts(now)
    found = sections(logs)
    result: dict[str, Any] = {
        "job": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "status": status,
            "reason": view.reason,
            "message": view.message,
            "startTime": view.start_time,
            "completionTime": completed,
            "succeeded": view.succeeded,
            "failed": view.failed,
        },
        "pods": _pods(logs),
    }
    data: dict[str, str] = {
        names.KEY_JOB: meta.get("name", ""),
        names.KEY_COMPLETION: completed,
        names.KEY_STATUS: status,
    }
    binary: dict[str, str] = {}
    fitted: Fitted | None = None
    readable = [s for _, s in found if not s.log.error]
    if not readable:
        why = (
            "; ".join(sorted({s.log.error for _, s in found}))
            if found
            else "no container of this Job had terminated while its pods existed (they were deleted first)"
        )
        data[names.KEY_AVAILABLE] = "false"
        data[names.KEY_LOGS] = f"[logs not available: {why}]\n"
        result["logs"] = {"available": False, "reason": why}
    else:
        overhead = len(json.dumps(result)) + sum(len(v) for v in data.values()) + 400 * len(found) + 4096
        fitted = fit([s for _, s in found], budget - overhead)
        data[names.KEY_AVAILABLE] = "true"
        if fitted.gz is not None:
            binary[names.KEY_LOGS_GZ] = base64.b64encode(fitted.gz).decode()
            data[names.KEY_LOGS] = (
                f"[{fitted.kept:,} bytes of logs, gzip-compressed in binaryData {names.KEY_LOGS_GZ}: "
                f"dataworks logs job/{meta.get('name')} -n {meta.get('namespace')}]\n"
            )
        else:
            data[names.KEY_LOGS] = fitted.text or ""
        result["logs"] = {
            "available": True,
            "encoding": "gzip" if fitted.gz is not None else "text",
            "key": names.KEY_LOGS_GZ if fitted.gz is not None else names.KEY_LOGS,
            "originalBytes": fitted.original,
            "keptBytes": fitted.kept,
            "storedBytes": fitted.stored,
            "truncated": fitted.truncated,
            "sections": [
                {
                    "header": s.header,
                    "pod": src.pod,
                    "container": src.container,
                    "init": src.init,
                    "run": src.instance + 1,
                    "bytes": s.log.size,
                    "sha256": s.log.sha256,
                    "truncated": cut,
                    "error": s.log.error or None,
                    "offloaded": logs.offloaded.get(src.key),
                }
                for (src, s), cut in zip(found, fitted.cut, strict=True)
            ],
        }
    data[names.KEY_RESULT] = json.dumps(result, indent=1)
    manifest: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": meta.get("namespace"),
            "labels": {
                names.CREATED: "true",
                names.JOB_NAME: meta.get("name"),
                names.JOB_UID: meta.get("uid"),
            },
        },
        "data": data,
    }
    if binary:
        manifest["binaryData"] = binary
    return manifest, fitted


def _finished_at(job: dict[str, Any]) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c.get("lastTransitionTime") or "") or None
    return None
