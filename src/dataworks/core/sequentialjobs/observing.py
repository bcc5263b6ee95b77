"""What a step's observed Job means for its status (pure layer, SequentialJob policy).

Each step reads the Job of its current run: active or suspended is Running,
Complete (or SuccessCriteriaMet) is Completed with the container's output,
Failed (or FailureTarget) is Failed with the most telling reason (OOMKilled
over BackoffLimitExceeded) and the container's own message. An outcome is
recorded once; skipped and cancelled steps keep their phase.
"""

from __future__ import annotations

from dataworks.api import sequentialjob as api
from dataworks.core.kit.clock import ts
from dataworks.core.kit.jobs import JobView
from dataworks.core.sequentialjobs.work import PodFacts, Work


def observe(w: Work) -> None:
    for st in w.status.steps:
        job = w.job(st.name)
        if job is not None and st.phase not in {"Skipped", "Cancelled"}:
            apply_job(st, job, w.facts.get(job.name, PodFacts()), w)


def apply_job(st: api.StepStatus, job: JobView, facts: PodFacts, w: Work) -> None:
    if st.phase in {"Completed", "Failed"} and st.job_name == job.name:
        return  # already recorded, with what the pods said at the time
    st.job_name = job.name
    st.start_time = st.start_time or job.start_time or ts(w.now)
    st.failed_pods = job.failed
    if job.state == "Succeeded":
        st.phase, st.reason, st.message = "Completed", None, None
        st.completion_time = job.completion_time or ts(w.now)
        st.output = facts.output
    elif job.state == "Failed":
        st.phase = "Failed"
        st.reason = facts.reason or job.reason or "Failed"
        detail = job.message
        if facts.reason and job.reason:
            detail = f"{job.reason}: {detail or 'the Job failed'}"
        if facts.message:
            detail = f"{detail}: {facts.message}" if detail else facts.message
        st.message = detail
        st.completion_time = job.completion_time or ts(w.now)
        st.output = facts.output
    else:
        st.phase = "Running"
