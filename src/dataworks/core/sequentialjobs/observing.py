"""What a step's observed Job means for its status (pure layer, SequentialJob policy).

Each step reads the Job of its current run: active or suspended is Running,
Complete (or SuccessCriteriaMet) is Completed with the container's output,
Failed (or FailureTarget) is Failed with the most telling reason (OOMKilled
over BackoffLimitExceeded) and the container's own message. An outcome is
recorded once; skipped and cancelled steps keep their phase.

What the pods said (`PodFacts`) may come after the outcome: a completed step
that is not the last is recorded, and the next one launched, before its pods
are read (see `outputs`); its output is filled in when they are. An output of
None means "not read yet", "" that the container left none.
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
            apply_job(st, job, w.facts.get(job.name), w)


def apply_job(st: api.StepStatus, job: JobView, read: PodFacts | None, w: Work) -> None:
    """Record the Job in the step's status; `read` is what its pods said, if they were read."""
    if st.phase in {"Completed", "Failed"} and st.job_name == job.name:
        if st.output is None and read is not None:  # read after the step was recorded
            st.output = read.output or ""
        return  # already recorded, with what the pods said at the time
    facts = read or PodFacts()
    output = None if read is None else (read.output or "")
    st.job_name = job.name
    st.start_time = st.start_time or job.start_time or ts(w.now)
    st.failed_pods = job.failed
    if job.state == "Succeeded":
        st.phase, st.reason, st.message = "Completed", None, None
        st.completion_time = job.completion_time or ts(w.now)
        st.output = output
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
        st.output = output
    else:
        st.phase = "Running"
