"""The sequence's phase, counts, progress and conditions (pure layer, SequentialJob policy).

`finish` sums up a pass. The phase, by precedence: Failed (the deadline, or a
step that failed with onFailure: stop), Completed (every step completed or
failed with onFailure: continue), Suspended, Running, Pending. Conditions,
each with observedGeneration: Progressing (False once finished, either way),
Available and Complete (True when completed), Failed, and Suspended. The end
of the sequence is one Event: SequenceCompleted or SequenceFailed.
`invalid` is the status of a spec that did not validate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dataworks.api import sequentialjob as api
from dataworks.core.kit import conditions, texts
from dataworks.core.kit.clock import ts
from dataworks.core.kit.plan import Event, Meta
from dataworks.core.sequentialjobs import deadline
from dataworks.core.sequentialjobs.work import TERMINAL, VALIDATION_FAILED, Plan, Work


def _counts(w: Work) -> None:
    steps = w.status.steps
    w.status.state = api.ExecutionState(
        active=sum(1 for s in steps if s.phase == "Running"),
        succeeded=sum(1 for s in steps if s.phase == "Completed"),
        failed=sum(1 for s in steps if s.phase == "Failed"),
    )
    ran = [s.index for s in steps if s.job_name]
    running = [s.index for s in steps if s.phase == "Running"]
    current = running[0] if running else max(ran, default=0)
    completed = [s.index for s in steps if s.phase == "Completed"]
    shown = len(steps) if len(completed) == len(steps) else (current + 1 if ran else 0)
    w.status.progress = api.Progress(
        current_index=current, completed_indices=completed, step=f"{shown}/{len(steps)}"
    )


def _phase(w: Work) -> tuple[str, str, str]:
    """(phase, reason, message) of the sequence after this pass."""
    steps, n = w.status.steps, len(w.status.steps)
    if w.deadline_hit:
        limit = w.spec.active_deadline_seconds
        return "Failed", deadline.REASON, f"the sequence exceeded activeDeadlineSeconds={limit}"
    stopped = next((s for s in steps if w.stops(s)), None)
    if stopped is not None:
        message = f"job {stopped.index} ({stopped.name}) failed: {stopped.reason}"
        if stopped.message and stopped.message != stopped.reason:
            message += f" ({stopped.message})"
        return "Failed", "JobFailed", message
    if all(w.passed(s) for s in steps):
        message = f"{w.status.state.succeeded} of {n} jobs completed"
        tolerated = [s for s in steps if s.phase == "Failed"]
        if tolerated:
            names = ", ".join(f"{s.index} ({s.name})" for s in tolerated)
            message += f"; job{'s' if len(tolerated) > 1 else ''} {names} failed with onFailure: continue"
        return "Completed", "Completed", message
    if w.spec.suspend:
        return "Suspended", "Suspended", "suspended by spec.suspend"
    running = next((s for s in steps if s.phase == "Running"), None)
    if running is not None:
        return "Running", "JobRunning", f"job {running.index} of {n} ({running.name}) running"
    if w.status.start_time:
        return "Running", "JobRunning", ""
    return "Pending", "Pending", ""


def finish(w: Work) -> None:
    status = w.status
    _counts(w)
    phase, reason, message = _phase(w)
    status.phase = phase  # type: ignore[assignment]
    status.message = message or None
    terminal = phase in TERMINAL
    status.completion_time = (status.completion_time or ts(w.now)) if terminal else None
    w.set_condition("Progressing", not terminal, reason, message)
    w.set_condition("Available", phase == "Completed", reason, message)
    w.set_condition("Complete", phase == "Completed", reason, message)
    w.set_condition("Failed", phase == "Failed", reason, message)
    w.set_condition("Suspended", phase == "Suspended", reason, message)
    if terminal and w.old.phase != phase:
        if phase == "Completed":
            w.plan.events.append(Event("Normal", "SequenceCompleted", message))
        else:
            w.plan.events.append(Event("Warning", "SequenceFailed", message))


def keep(w: Work) -> None:
    """A finished sequence keeps its outcome (edits apply at its next re-run): only the generation
    it has seen moves."""
    w.status.steps = [s.model_copy() for s in w.old.steps]
    for c in w.status.conditions:
        c.observed_generation = w.meta.generation


def invalid(meta: Meta, old: api.SequentialJobStatus, errors: Sequence[object], now: datetime) -> Plan:
    """A spec that failed validation: the sequence fails with ValidationFailed; nothing new starts."""
    status = old.model_copy(deep=True)
    text = texts.summary(errors)
    status.phase = "Failed"
    status.message = f"invalid spec: {text}"
    status.completion_time = status.completion_time or ts(now)
    status.observed_generation = meta.generation
    for type_, value in (
        ("Progressing", False),
        ("Available", False),
        ("Complete", False),
        ("Failed", True),
        ("Suspended", False),
    ):
        conditions.set_condition(
            status.conditions,
            type_,
            value,
            reason=VALIDATION_FAILED,
            message=text,
            now=now,
            generation=meta.generation,
        )
    plan = Plan(status=status)
    if old.message != status.message:
        plan.events.append(Event("Warning", VALIDATION_FAILED, status.message))
    return plan
