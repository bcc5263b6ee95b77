"""Suspend and resume (pure layer, SequentialJob policy).

`spec.suspend: true` starts no step (see planning) and suspends the running
step's Job: the Job controller stops its pods. Clearing it resumes the Job the
sequence suspended (its pod starts afresh). A Job suspended by someone else
is theirs to resume: Kueue creates every Job suspended and resumes it once it
admits it, so a sequence that was not suspended never resumes a Job.
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
        elif not w.spec.suspend and job.state == "Suspended" and w.old.phase == "Suspended":
            w.plan.resume.append(job.name)
