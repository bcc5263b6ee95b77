"""Which Events a pass sends about steps (pure layer, SequentialJob policy).

One Event per step transition, in step order, with the seed's reasons:
JobStarted and JobCompleted (Normal), JobFailed (Warning). A step whose Job
started and ended while nobody watched (an operator restart) still gets its
JobStarted before its outcome, so the Events read in order. The sequence's
own end (SequenceCompleted, SequenceFailed) is the status module's.
"""

from __future__ import annotations

from dataworks.api import sequentialjob as api
from dataworks.core.kit.plan import Event
from dataworks.core.sequentialjobs.work import Work


def _started(st: api.StepStatus) -> Event:
    return Event(
        "Normal", "JobStarted", f"Started job {st.index} ({st.name}): Job {st.job_name}", step=st.name
    )


def step_events(w: Work) -> None:
    for st in w.status.steps:
        before = w.previous.get(st.name)
        same_run = before is not None and before.attempt == st.attempt
        if same_run and before is not None and before.phase == st.phase:
            continue
        was_running = same_run and before is not None and before.phase == "Running"
        if st.phase == "Running":
            w.plan.events.append(_started(st))
        elif st.phase in {"Completed", "Failed"} and st.job_name:
            if not was_running:
                w.plan.events.append(_started(st))
            if st.phase == "Completed":
                message = f"Job {st.index} ({st.name}) completed successfully"
                w.plan.events.append(Event("Normal", "JobCompleted", message, step=st.name))
            else:
                message = f"Job {st.index} ({st.name}) failed: {st.message or st.reason}"
                w.plan.events.append(Event("Warning", "JobFailed", message, step=st.name))
