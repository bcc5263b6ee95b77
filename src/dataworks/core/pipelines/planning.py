"""The Pipeline planner (pure layer): observed state in, one Plan out.

`plan(meta, validated, status, jobs, now, settings)` decides everything a
reconcile does: which step Jobs to create, delete, suspend or resume, the one
status to write, and the events to send once that status is written. It reads
the world only through its arguments, so the operator and the local executor
run the same decisions, and a repeated call with the same input is a no-op.

This module only orders the policies; each lives in its own module:
observing, retry, failure, dependencies (the gate of pipelineDependencies,
decided by the caller from what it read), scheduling, status, events (see
`work.Work`).
The planner takes a validated spec (`validation.validate_raw`), the one way in.
"""

from __future__ import annotations

from datetime import datetime

from dataworks.api import pipeline as api
from dataworks.core.kit import lifecycle
from dataworks.core.kit.conditions import set_condition
from dataworks.core.kit.jobs import JobView
from dataworks.core.kit.plan import Meta
from dataworks.core.pipelines import (
    dependencies,
    events,
    failure,
    observing,
    retry,
    scheduling,
    status,
    validation,
)
from dataworks.core.pipelines.steps import SpecError
from dataworks.core.pipelines.work import TERMINAL_PIPELINE, Launch, Plan, Settings, Work

__all__ = ["Launch", "Meta", "Plan", "Settings", "plan"]


def plan(
    meta: Meta,
    checked: tuple[validation.Validated | None, list[SpecError]],
    old_status: api.PipelineStatus | None,
    jobs: list[JobView],
    *,
    now: datetime,
    settings: Settings | None = None,
    gate: dependencies.Gate | None = None,
) -> Plan:
    """Plan one reconcile of a spec already validated (`validation.validate_raw`'s result;
    callers cache it per generation)."""
    old = old_status or api.PipelineStatus()
    settings = settings or Settings()
    validated, errors = checked
    if validated is None:
        return status.invalid(meta, old, errors, now)
    w = Work(meta=meta, old=old, validated=validated, now=now, jobs=jobs)
    set_condition(
        w.status.conditions, "Valid", True, reason="Valid", message="", now=now, generation=meta.generation
    )
    retry.retry(w)
    observing.observe(w)
    stopping = w.spec.shutdown == "Terminate" or w.deadline_hit()
    if stopping and old.phase not in TERMINAL_PIPELINE:
        failure.stop(w, "pipeline cancelled" if w.spec.shutdown else "pipeline deadline exceeded")
    failure.skip_blocked(w)
    waiting = gate is not None and not gate.ready and dependencies.not_started(w)
    if not stopping:
        scheduling.suspend_or_resume(w)
        if not w.spec.suspend and not waiting:
            scheduling.schedule(w)
    events.step_events(w, normal=settings.step_events)
    status.finish(w, deadline_hit=w.deadline_hit())  # spec.shutdown takes precedence in status
    if gate is not None:
        dependencies.record(w, gate, waiting=waiting)
    if old.observed_generation is not None and old.observed_generation != meta.generation:
        events.ignored_changes(w)
    _timers(w)
    return w.plan


def _timers(w: Work) -> None:
    """When to look again without an event: at the deadline, or to apply the TTL."""
    t = lifecycle.timers(
        finished=w.status.phase in TERMINAL_PIPELINE,
        start_time=w.status.start_time,
        completion_time=w.status.completion_time,
        active_deadline_seconds=w.spec.active_deadline_seconds,
        ttl_seconds_after_finished=w.spec.ttl_seconds_after_finished,
        now=w.now,
    )
    w.plan.delete_pipeline, w.plan.requeue_at = t.delete_now, t.requeue_at
