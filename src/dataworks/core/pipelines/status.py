"""The pipeline's phase, counters and conditions (pure layer, Pipeline policy).

`finish` sums up a pass: phase by precedence (Cancelled, deadline, Failed,
Completed, Suspended, Running, Pending; a finished pipeline stays cancelled or
not whatever spec.shutdown says later), progress and duration, the
Complete/Failed/Suspended conditions, and the pipeline's terminal Event.
`invalid` is the status of a spec that did not validate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dataworks.api import pipeline as api
from dataworks.core.kit import quantities, texts
from dataworks.core.kit.clock import seconds_between, ts
from dataworks.core.kit.conditions import set_condition
from dataworks.core.kit.plan import Event, Meta
from dataworks.core.pipelines import failure
from dataworks.core.pipelines.work import TERMINAL_PIPELINE, TERMINAL_STEP, Plan, Work


def _phase(w: Work, *, deadline_hit: bool) -> tuple[str, str, str]:
    spec, status, steps = w.spec, w.status, w.status.step_statuses
    fatal = failure.fatal(w)
    all_done = all(s.phase in TERMINAL_STEP for s in steps)
    # A pipeline that had finished, with nothing re-opened since (spec.retry), keeps its outcome:
    # spec.shutdown cancels only an unfinished pipeline, and clearing it does not un-cancel one.
    ended = w.old.phase in TERMINAL_PIPELINE and all_done
    if (spec.shutdown == "Terminate" and not ended) or (ended and w.old.phase == "Cancelled"):
        return "Cancelled", "Cancelled", "cancelled by spec.shutdown=Terminate"
    if deadline_hit:
        return (
            "Failed",
            "DeadlineExceeded",
            f"pipeline exceeded activeDeadlineSeconds={spec.active_deadline_seconds}",
        )
    if all_done and fatal:
        first = w.by_name[fatal[0]]
        message = f"step {first.name} failed: {first.reason}"
        if first.message and first.message != first.reason:
            message += f" ({first.message})"
        if len(fatal) > 1:
            message += f" (and {len(fatal) - 1} more failed steps)"
        return "Failed", first.reason or "StepFailed", message
    if all_done:
        return "Completed", "Completed", f"{status.completed_steps} of {status.total_steps} steps completed"
    if spec.suspend:
        return "Suspended", "Suspended", "suspended by spec.suspend"
    if any(s.phase == "Running" for s in steps) or status.start_time:
        return "Running", "Running", ""
    return "Pending", "Pending", ""


def finish(w: Work, *, deadline_hit: bool) -> None:
    status, now = w.status, w.now
    steps = status.step_statuses
    status.total_steps = len(steps)
    status.completed_steps = sum(1 for s in steps if s.phase == "Completed")
    status.failed_steps = sum(1 for s in steps if s.phase == "Failed")
    status.progress = f"{status.completed_steps}/{status.total_steps}"
    if any(s.phase == "Running" for s in steps) and not status.start_time:
        status.start_time = ts(now)
    phase, reason, message = _phase(w, deadline_hit=deadline_hit)
    status.phase = phase  # type: ignore[assignment]
    status.message = message or None
    terminal = phase in TERMINAL_PIPELINE
    if terminal:
        status.completion_time = status.completion_time or ts(now)
        if status.start_time:
            status.duration = quantities.format_duration(
                seconds_between(status.start_time, status.completion_time)
            )
    else:
        status.completion_time, status.duration = None, None
    gen = w.meta.generation
    for type_ in ("Complete", "Failed", "Suspended"):
        value = phase == {"Complete": "Completed"}.get(type_, type_)
        set_condition(
            status.conditions, type_, value, reason=reason, message=message, now=now, generation=gen
        )
    if phase != w.old.phase and terminal:
        kind = {"Completed": ("Normal", "PipelineCompleted"), "Failed": ("Warning", "PipelineFailed")}
        type_, ev = kind.get(phase, ("Normal", "PipelineCancelled"))
        w.plan.events.append(Event(type_, ev, message))


def invalid(meta: Meta, old: api.PipelineStatus, errors: list[Any], now: datetime) -> Plan:
    """A spec that failed validation: the pipeline fails with InvalidSpec, and nothing runs."""
    status = old.model_copy(deep=True)
    text = texts.summary(errors)
    status.phase = "Failed"
    status.message = f"invalid spec: {text}"
    status.completion_time = status.completion_time or ts(now)
    status.observed_generation = meta.generation
    for type_, value in (("Valid", False), ("Failed", True), ("Complete", False)):
        set_condition(
            status.conditions,
            type_,
            value,
            reason="InvalidSpec",
            message=text,
            now=now,
            generation=meta.generation,
        )
    events = []
    if old.message != status.message:
        events.append(Event("Warning", "InvalidSpec", status.message))
    return Plan(status=status, events=events)
