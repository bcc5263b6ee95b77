"""Which steps start now (pure layer, Pipeline policy): dependencies, maxParallel, suspend."""

from __future__ import annotations

from dataworks.core.kit import naming
from dataworks.core.kit.clock import ts
from dataworks.core.pipelines.work import Launch, Work


def ready(w: Work, name: str) -> bool:
    """Every dependency completed (or failed with onFailure: continue)."""
    return all(
        w.by_name[d].phase == "Completed"
        or (w.by_name[d].phase == "Failed" and w.defs[d].on_failure == "continue")
        for d in w.deps[name]
    )


def schedule(w: Work) -> None:
    """Launch ready steps in topological order, within maxParallel."""
    running = sum(1 for s in w.status.step_statuses if s.phase == "Running")
    budget = (w.spec.max_parallel or len(w.order)) - running
    for name in w.order:
        st = w.by_name[name]
        # A step recorded Running whose Job is not (yet) observed is launched
        # again: the name is deterministic, so the create adopts the Job.
        relaunch = st.phase == "Running" and w.job(name) is None
        if not (st.phase == "Waiting" and budget > 0) and not relaunch:
            continue
        if not ready(w, name):
            continue
        job_name = naming.job_name(w.meta.name, name, st.attempt)
        w.plan.create.append(Launch(step=w.defs[name], attempt=st.attempt, job_name=job_name))
        if st.phase == "Waiting":
            budget -= 1
        st.phase, st.job_name = "Running", job_name
        st.start_time = st.start_time or ts(w.now)
        st.spec_hash = w.defs[name].fingerprint()


def suspend_or_resume(w: Work) -> None:
    """spec.suspend suspends running steps' Jobs; clearing it resumes them."""
    for name in w.order:
        job = w.job(name)
        if job is None or w.by_name[name].phase != "Running":
            continue
        if w.spec.suspend and job.state == "Active":
            w.plan.suspend.append(job.name)
        elif not w.spec.suspend and job.state == "Suspended":
            w.plan.resume.append(job.name)
