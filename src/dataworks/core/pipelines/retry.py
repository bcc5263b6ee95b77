"""Declarative retry requests (pure layer, Pipeline policy): `spec.retry` applied once per id."""

from __future__ import annotations

from dataworks.api import pipeline as api
from dataworks.core.kit import dag
from dataworks.core.kit.plan import Event
from dataworks.core.pipelines.work import Work

REDO = frozenset({"Failed", "Skipped", "Cancelled"})


def apply_request(
    spec: api.PipelineSpec, status: api.PipelineStatus, deps: dict[str, tuple[str, ...]]
) -> list[str]:
    """Apply a new retry request to the statuses; returns the steps it re-runs.

    A request names one step (it re-runs with those of its dependents that did
    not complete) or none (every failed, skipped or cancelled step re-runs).
    Completed steps keep their results.
    """
    request = spec.retry
    if request is None or request.id == status.last_retry_id:
        return []
    status.last_retry_id = request.id
    by_name = {s.name: s for s in status.step_statuses}
    if request.step:
        if request.step not in by_name:
            return []
        targets = {request.step} | {
            d for d in dag.dependents(deps, [request.step]) if by_name[d].phase in REDO
        }
    else:
        targets = {s.name for s in status.step_statuses if s.phase in REDO}
    for name in targets:
        st = by_name[name]
        if st.job_name:  # it ran: the new attempt gets a new Job; never-run steps keep theirs
            st.attempt += 1
        st.phase, st.job_name, st.start_time, st.completion_time = "Waiting", None, None, None
        st.message, st.reason, st.workers, st.outputs = None, None, None, None
    if targets:
        status.completion_time = None
        status.message = None
    return sorted(targets)


def retry(w: Work) -> None:
    """Apply the spec's retry request, unless the pipeline is being cancelled."""
    if w.spec.shutdown:
        return
    for name in apply_request(w.spec, w.status, w.deps):
        w.plan.events.append(
            Event("Normal", "StepRetrying", f"step {name} will re-run as attempt {w.by_name[name].attempt}")
        )
