"""Which steps start now (pure layer, Pipeline policy): dependencies, conditions, maxParallel,
suspend."""

from __future__ import annotations

from dataworks.core.kit import naming
from dataworks.core.kit.clock import ts
from dataworks.core.pipelines import conditions, failure
from dataworks.core.pipelines.work import Launch, Work


def ready(w: Work, name: str) -> bool:
    """Every dependency completed (or failed with onFailure: continue, or was skipped by its
    condition with onSkipped: run)."""
    return all(
        w.by_name[d].phase == "Completed"
        or (w.by_name[d].phase == "Failed" and w.defs[d].on_failure == "continue")
        or failure.skipped_to_run(w, d)
        for d in w.deps[name]
    )


def schedule(w: Work) -> None:
    """Launch ready steps in topological order, within maxParallel; a step whose condition
    is false is Skipped instead, and one whose condition fails to evaluate Failed."""
    running = sum(1 for s in w.status.step_statuses if s.phase == "Running")
    budget = (w.spec.max_parallel or len(w.order)) - running
    decided = False
    for name in w.order:
        st = w.by_name[name]
        # A step recorded Running whose Job is not (yet) observed is launched
        # again: the name is deterministic, so the create adopts the Job.
        relaunch = st.phase == "Running" and w.job(name) is None
        if not (st.phase == "Waiting" and budget > 0) and not relaunch:
            continue
        if not ready(w, name):
            continue
        if not relaunch and w.defs[name].when is not None and _by_condition(w, name):
            decided = True
            continue
        job_name = naming.job_name(w.meta.name, name, st.attempt)
        absent = tuple(d for d in w.deps[name] if w.by_name[d].phase != "Completed")
        w.plan.create.append(
            Launch(step=w.defs[name], attempt=st.attempt, job_name=job_name, absent_inputs=absent)
        )
        if st.phase == "Waiting":
            budget -= 1
        st.phase, st.job_name = "Running", job_name
        st.start_time = st.start_time or ts(w.now)
        st.spec_hash = w.defs[name].fingerprint()
    if decided:  # what a skipped or failed condition does to the steps after it, in this pass
        failure.skip_blocked(w)


def _by_condition(w: Work, name: str) -> bool:
    """Evaluate the step's condition; True when it decided the step (Skipped or Failed)."""
    seen = conditions.variables(
        {s.name: (s.phase, s.outputs) for s in w.status.step_statuses},
        params={},
        pipeline={"name": w.meta.name, "namespace": w.meta.namespace},
        now=w.now,
    )
    d = conditions.decide(w.defs[name], seen)
    if d.outcome == "run":
        return False
    st = w.by_name[name]
    st.phase = "Skipped" if d.outcome == "skip" else "Failed"
    st.reason = "ConditionFalse" if d.outcome == "skip" else "ConditionError"
    st.message = d.message
    st.start_time = st.start_time or ts(w.now)
    st.completion_time = ts(w.now)
    return True


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
