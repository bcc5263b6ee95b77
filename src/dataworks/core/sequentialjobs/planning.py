"""The SequentialJob planner (pure layer): observed state in, one Plan out.

`plan(meta, checked, status, jobs, facts, now)` decides everything a
reconcile does: the step Job to create (at most one: the next step), Jobs to
delete (the deadline), suspend or resume, the one status to write, and the
Events to send once it is written. It reads the world only through its
arguments, so the operator and the local runtime make the same decisions,
and a repeated call with the same input is a no-op.

This module only orders the policies; each lives in its own module:
rerun, observing, deadline, sequencing, suspension, events, status, outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dataworks.api import sequentialjob as api
from dataworks.core.kit import lifecycle
from dataworks.core.kit.jobs import JobView
from dataworks.core.kit.plan import Meta
from dataworks.core.sequentialjobs import (
    deadline,
    events,
    observing,
    outputs,
    rerun,
    sequencing,
    status,
    suspension,
)
from dataworks.core.sequentialjobs.validation import Validated
from dataworks.core.sequentialjobs.work import Launch, Plan, PodFacts, Work

__all__ = ["Launch", "Meta", "Plan", "PodFacts", "plan"]


def plan(
    meta: Meta,
    checked: tuple[Validated | None, Sequence[object]],
    old_status: api.SequentialJobStatus | None,
    jobs: list[JobView],
    *,
    now: datetime,
    facts: dict[str, PodFacts] | None = None,
) -> Plan:
    """Plan one reconcile of a spec already validated (`validation.validate_raw`'s result;
    callers cache it per generation). `facts` are what the pods of newly finished Jobs said."""
    old = old_status or api.SequentialJobStatus()
    validated, errors = checked
    if validated is None:
        return status.invalid(meta, old, errors, now)
    w = Work(meta=meta, old=old, spec=validated.spec, now=now, jobs=jobs, facts=facts)
    rerun.rerun(w)
    if w.finished:
        status.keep(w)
    else:
        observing.observe(w)
        if deadline.passed(w):
            deadline.stop(w)
        sequencing.skip_after_stop(w)
        suspension.suspend_or_resume(w)
        if not w.spec.suspend and not w.deadline_hit:
            sequencing.schedule(w)
        events.step_events(w)
        status.finish(w)
    _timers(w)
    return w.plan


def _timers(w: Work) -> None:
    """When to look again without an event: at the deadline, to apply the TTL, or at once to read
    a completed step's output."""
    t = lifecycle.timers(
        finished=w.status.phase in api.TERMINAL_PHASES,
        start_time=w.status.start_time,
        completion_time=w.status.completion_time,
        active_deadline_seconds=w.spec.active_deadline_seconds,
        ttl_seconds_after_finished=w.spec.ttl_seconds_after_finished,
        now=w.now,
    )
    w.plan.delete_self, w.plan.requeue_at = t.delete_now, t.requeue_at
    if outputs.unread(w):
        w.plan.requeue_at = w.now
