"""Which step runs now (pure layer, SequentialJob policy): one at a time, in order.

A step starts only once every step before it completed (or failed with
onFailure: continue). A step whose Job the status records but the cache
does not show is launched again: its name is deterministic, so the create
adopts the Job that exists. A step that fails with onFailure: stop ends the
sequence: the steps after it are skipped.
"""

from __future__ import annotations

from dataworks.core.kit import naming
from dataworks.core.kit.clock import ts
from dataworks.core.sequentialjobs.work import Launch, Work


def skip_after_stop(w: Work) -> None:
    """Skip every waiting step after a step that failed with onFailure: stop."""
    stopped = None
    for st in w.status.steps:
        if stopped is not None and st.phase == "Waiting":
            st.phase, st.reason = "Skipped", "SequenceStopped"
            st.message = f"skipped: job {stopped.index} ({stopped.name}) failed"
        elif stopped is None and w.stops(st):
            stopped = st


def next_step(w: Work) -> int | None:
    """The index of the step to launch now, if any."""
    for st in w.status.steps:
        if w.passed(st):
            continue
        if st.phase == "Waiting" or (st.phase == "Running" and w.job(st.name) is None):
            return st.index
        return None  # running, or the sequence stopped here
    return None


def schedule(w: Work) -> None:
    index = next_step(w)
    if index is None:
        return
    st = w.status.steps[index]
    job_name = naming.job_name(w.meta.name, st.name, st.attempt)
    w.plan.create.append(
        Launch(
            index=index,
            container=w.containers[st.name],
            policy=w.policy(st.name),
            attempt=st.attempt,
            job_name=job_name,
        )
    )
    st.phase, st.job_name = "Running", job_name
    st.start_time = st.start_time or ts(w.now)
    w.status.start_time = w.status.start_time or ts(w.now)
