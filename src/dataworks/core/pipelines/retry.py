"""Declarative retry requests (pure layer, Pipeline policy): `spec.retry` applied once per id.

Two rules keep a retry from leaving the pipeline in a state nothing resolves:
- a request that names a running step is refused (a Warning Event says so): a new attempt
  beside the running one would leave that Job neither deleted nor watched. The request's id
  is spent, as `kubectl` users expect of a rejected change; ask again once the step ended.
- a retry that re-opens a finished pipeline starts its `activeDeadlineSeconds` clock again
  (`status.startTime` becomes the retry's time), as resuming a suspended Job restarts its
  own: a pipeline that failed on its deadline would otherwise fail again at once, its
  re-opened steps left Waiting.
"""

from __future__ import annotations

from dataworks.api import pipeline as api
from dataworks.core.kit import dag
from dataworks.core.kit.clock import ts
from dataworks.core.kit.plan import Event
from dataworks.core.pipelines.work import TERMINAL_PIPELINE, Work

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


def refusal(spec: api.PipelineSpec, status: api.PipelineStatus) -> str | None:
    """Why a new request cannot be applied now, or None."""
    request = spec.retry
    if request is None or request.id == status.last_retry_id or not request.step:
        return None
    st = next((s for s in status.step_statuses if s.name == request.step), None)
    if st is not None and st.phase == "Running":
        return (
            f"retry {request.id} refused: step {st.name} is running (attempt {st.attempt}); "
            "request a retry once it has ended, or cancel the pipeline first"
        )
    return None


def retry(w: Work) -> None:
    """Apply the spec's retry request, unless the pipeline is being cancelled."""
    if w.spec.shutdown:
        return
    refused = refusal(w.spec, w.status)
    if refused is not None:
        assert w.spec.retry is not None
        w.status.last_retry_id = w.spec.retry.id  # spent: the same request is not judged again
        w.plan.events.append(Event("Warning", "RetryRefused", refused))
        return
    rerun = apply_request(w.spec, w.status, w.deps)
    if rerun and w.old.phase in TERMINAL_PIPELINE:
        w.status.start_time = ts(w.now)  # the deadline counts from the retry
    for name in rerun:
        w.plan.events.append(
            Event("Normal", "StepRetrying", f"step {name} will re-run as attempt {w.by_name[name].attempt}")
        )
