"""What a step's observed Job means for its status (pure layer, Pipeline policy)."""

from __future__ import annotations

from datetime import datetime

from dataworks.api import pipeline as api
from dataworks.core.kit.clock import ts
from dataworks.core.kit.jobs import JobView
from dataworks.core.pipelines import outputs
from dataworks.core.pipelines.steps import StepDef
from dataworks.core.pipelines.work import Work


def observe(w: Work) -> None:
    """Copy each step's current Job into its status (skipped and cancelled steps stay so)."""
    for name in w.order:
        st, job = w.by_name[name], w.job(name)
        if job is not None and st.phase not in {"Skipped", "Cancelled"}:
            apply_job(st, job, w.defs[name], w.now)


def apply_job(st: api.StepStatus, job: JobView, sdef: StepDef, now: datetime) -> None:
    if job.state == "Failed" and st.phase == "Failed" and st.job_name == job.name:
        return  # already recorded, with the pod-level reason looked up at the time
    st.job_name = job.name
    st.start_time = st.start_time or job.start_time
    if sdef.is_fan_out:
        st.workers = api.WorkerCounts(
            active=job.active, succeeded=job.succeeded, failed=job.failed, failed_indexes=job.failed_indexes
        )
    if job.state == "Succeeded":
        st.phase, st.reason, st.message = "Completed", None, None
        # Recorded once, when first observed: the Job's own completionTime
        # arrives in a later event, and copying it would cost one more write.
        st.completion_time = st.completion_time or job.completion_time or ts(now)
        if st.outputs is None and job.pod_outputs is not None:
            st.outputs = outputs.combine(job.pod_outputs)
    elif job.state == "Failed":
        st.phase, st.reason = "Failed", job.pod_reason or job.reason or "Failed"
        detail = job.message
        if job.pod_reason and job.reason:
            detail = f"{job.reason}: {detail or 'the Job failed'}"
        if sdef.is_fan_out and sdef.parallelism > 1:
            failed_workers = len(indexes(job.failed_indexes)) or job.failed
            detail = f"{failed_workers} of {sdef.parallelism} workers failed ({st.reason})"
        if job.pod_message:  # what the container itself said, e.g. the worker's error line
            detail = f"{detail}: {job.pod_message}" if detail else job.pod_message
        st.message = detail
    else:
        st.phase = "Running"


def indexes(text: str | None) -> set[int]:
    """A Job's index list ("0,2-4") as a set."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            out.update(range(int(a), int(b) + 1))
        elif part.strip():
            out.add(int(part))
    return out
