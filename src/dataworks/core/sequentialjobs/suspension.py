"""Suspend and resume (pure layer, SequentialJob policy).

`spec.suspend: true` starts no step (see planning) and suspends the running
step's Job: the Job controller stops its pods. Clearing it resumes the Job,
whose pod starts afresh.
"""

from __future__ import annotations

from dataworks.core.sequentialjobs.work import Work


def suspend_or_resume(w: Work) -> None:
    for st in w.status.steps:
        job = w.job(st.name)
        if job is None or st.phase != "Running":
            continue
        if w.spec.suspend and job.state == "Active":
            w.plan.suspend.append(job.name)
        elif not w.spec.suspend and job.state == "Suspended":
            w.plan.resume.append(job.name)
