"""The whole sequence's deadline (pure layer, SequentialJob policy): `spec.activeDeadlineSeconds`.

Counted from the sequence's start (or its latest re-run), suspended time
included. When it passes before the sequence finished, the running step's
Job is deleted and the step Cancelled, the steps not yet run are Skipped, and
the sequence fails with reason DeadlineExceeded. A step's own deadline is its
Job's activeDeadlineSeconds, which the Job controller enforces.
"""

from __future__ import annotations

from dataworks.core.kit import lifecycle
from dataworks.core.kit.clock import ts
from dataworks.core.sequentialjobs.work import TERMINAL_STEP, Work

REASON = "DeadlineExceeded"


def passed(w: Work) -> bool:
    return lifecycle.deadline_passed(w.status.start_time, w.spec.active_deadline_seconds, w.now)


def stop(w: Work) -> None:
    """Cancel the running step and skip the rest, if the sequence still had steps to run."""
    open_steps = [st for st in w.status.steps if st.phase not in TERMINAL_STEP]
    if not open_steps:
        return
    w.deadline_hit = True
    why = f"the sequence exceeded activeDeadlineSeconds={w.spec.active_deadline_seconds}"
    for st in open_steps:
        job = w.job(st.name)
        if st.phase == "Running":
            if job is not None and job.state in {"Active", "Suspended"}:
                w.plan.delete.append(job.name)
            st.phase, st.completion_time = "Cancelled", ts(w.now)
        else:
            st.phase = "Skipped"
        st.reason, st.message = REASON, why
