"""Declarative re-runs (pure layer, SequentialJob policy): `spec.retry` applied once per id.

A request re-runs a finished sequence from one step: the named one, or the
first that did not complete. That step and every later one run again, each
that had run as a new attempt with a new Job; the steps before it keep their
Jobs and outputs, and the shared volumes are untouched. The re-run is a new
run of the sequence: its startTime (from which activeDeadlineSeconds counts)
is that of the re-run. A request that arrives while the sequence still runs,
or finds nothing to re-run, is recorded as handled and said so in an Event
(one in the manifest a SequentialJob is created with is only recorded).
"""

from __future__ import annotations

from dataworks.core.kit.plan import Event
from dataworks.core.sequentialjobs.work import Work


def start_index(w: Work) -> int | None:
    """Where the requested re-run starts (None: every step completed and none is named)."""
    request = w.spec.retry
    assert request is not None
    if request.step:
        return next((st.index for st in w.status.steps if st.name == request.step), None)
    return next((st.index for st in w.status.steps if st.phase != "Completed"), None)


def rerun(w: Work) -> None:
    request = w.spec.retry
    if request is None or request.id == w.status.last_retry_id:
        return
    w.status.last_retry_id = request.id
    if w.old.observed_generation is None:
        return  # created with a request: nothing has run yet, so there is nothing to re-run
    if not w.finished:
        w.plan.events.append(
            Event(
                "Warning",
                "RetryIgnored",
                f"retry {request.id}: the sequence has not finished; request a re-run once it has",
            )
        )
        return
    start = start_index(w)
    if start is None:
        w.plan.events.append(
            Event("Normal", "RetryIgnored", f"retry {request.id}: every job completed; name a step to re-run")
        )
        return
    for st in w.status.steps[start:]:
        if st.job_name:  # it ran: the new run gets a new Job; a step that never ran keeps its attempt
            st.attempt += 1
        st.phase, st.job_name, st.start_time, st.completion_time = "Waiting", None, None, None
        st.failed_pods, st.reason, st.message, st.output = 0, None, None, None
    w.status.phase = "Running"
    w.status.start_time = w.status.completion_time = w.status.message = None
    w.finished = False
    first = w.status.steps[start]
    w.plan.events.append(
        Event(
            "Normal",
            "Rerun",
            f"retry {request.id}: re-running from job {start} ({first.name}); "
            f"{'jobs before it keep their results' if start else 'every job runs again'}",
        )
    )
