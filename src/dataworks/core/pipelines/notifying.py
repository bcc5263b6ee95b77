"""Failure notifications (pure layer): which receivers hear about a status change, and what they get.

A pipeline that turns Failed is `critical`; a step that fails on its own while
the pipeline goes on (`onFailure: continue` or `skip-dependents`) is a
`warning`. Each receiver has a severity filter and a per-pipeline cooldown;
`last_sent` and `now` come from the caller, so this decides without a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dataworks.api import pipeline as api
from dataworks.api.config import Receiver

SEVERITY_RANK = {"warning": 1, "critical": 2}


@dataclass(frozen=True)
class Notice:
    receiver: Receiver
    severity: str
    namespace: str
    pipeline: str
    step: str | None
    reason: str | None
    message: str | None
    body: dict[str, Any] | None = None  # another kind's payload, already made (a StreamingJob's anomaly)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.receiver.name, self.namespace, self.pipeline)


def _failures(old: api.PipelineStatus | None, new: api.PipelineStatus) -> list[api.StepStatus]:
    before = {s.name: s for s in (old.step_statuses if old else [])}
    out = []
    for s in new.step_statuses:
        was = before.get(s.name)
        if s.phase == "Failed" and (was is None or was.phase != "Failed" or was.attempt != s.attempt):
            out.append(s)
    return out


def _failed_reason(status: api.PipelineStatus) -> str | None:
    return next((c.reason for c in status.conditions if c.type == "Failed" and c.status == "True"), None)


def notices(
    where: tuple[str, str],
    old: api.PipelineStatus | None,
    new: api.PipelineStatus,
    *,
    receivers: list[Receiver],
    last_sent: dict[tuple[str, str, str], datetime],
    now: datetime,
) -> list[Notice]:
    """The notifications one reconcile's status change calls for."""
    namespace, pipeline = where
    failed_now = new.phase == "Failed" and (old is None or old.phase != "Failed")
    steps = _failures(old, new)
    if failed_now:
        first = next((s for s in new.step_statuses if s.phase == "Failed"), None)
        severity, step = "critical", first
    elif steps:
        severity, step = "warning", steps[0]
    else:
        return []
    out = []
    for r in receivers:
        if SEVERITY_RANK[severity] < SEVERITY_RANK[r.min_severity]:
            continue
        sent = last_sent.get((r.name, namespace, pipeline))
        if sent is not None and now - sent < timedelta(seconds=r.cooldown_seconds):
            continue
        out.append(
            Notice(
                receiver=r,
                severity=severity,
                namespace=namespace,
                pipeline=pipeline,
                step=step.name if step else None,
                reason=(step.reason if step else None) or _failed_reason(new),
                message=(step.message if step else None) or new.message,
            )
        )
    return out


def payload(n: Notice) -> dict[str, Any]:
    """The body one receiver gets: our JSON, or a Slack-compatible message."""
    if n.body is not None:
        return n.body
    hint = f"dataworks describe {n.pipeline} -n {n.namespace}"
    if n.step:
        hint += f"; dataworks logs {n.pipeline} -n {n.namespace} --step {n.step}"
    what = f"step {n.step} failed" if n.step else "the pipeline failed"
    if n.receiver.format == "slack":
        icon = ":red_circle:" if n.severity == "critical" else ":warning:"
        text = f"{icon} *{n.namespace}/{n.pipeline}*: {what} ({n.reason or 'unknown reason'})"
        if n.message:
            text += f"\n> {n.message}"
        return {"text": f"{text}\n`{hint}`"}
    return {
        "severity": n.severity,
        "namespace": n.namespace,
        "pipeline": n.pipeline,
        "step": n.step,
        "reason": n.reason,
        "summary": what,
        "logExcerpt": n.message,
        "hint": hint,
    }
