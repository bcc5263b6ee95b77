"""What failures do to the rest of the DAG (pure layer, Pipeline policy): skip, continue, stop."""

from __future__ import annotations

from dataworks.core.kit.clock import ts
from dataworks.core.pipelines.work import TERMINAL_STEP, Work

SKIPPED_BY_CONDITION = frozenset({"ConditionFalse", "UpstreamSkipped"})


def skipped_to_run(w: Work, upstream: str) -> bool:
    """Step `upstream` was skipped by its condition and lets its dependents run (onSkipped: run)."""
    up = w.by_name[upstream]
    return up.phase == "Skipped" and up.reason == "ConditionFalse" and w.defs[upstream].on_skipped == "run"


def blocks(w: Work, upstream: str) -> bool:
    """Whether step `upstream`'s outcome keeps its dependents from running."""
    up = w.by_name[upstream]
    if skipped_to_run(w, upstream):
        return False
    return up.phase in {"Skipped", "Cancelled"} or (
        up.phase == "Failed" and w.defs[upstream].on_failure != "continue"
    )


def skip_blocked(w: Work) -> None:
    """Skip the dependents of failed, skipped and cancelled steps (unless `continue`, or a
    condition's skip with `onSkipped: run`)."""
    for name in w.order:
        st = w.by_name[name]
        if st.phase != "Waiting":
            continue
        for d in w.deps[name]:
            if blocks(w, d):
                up = w.by_name[d]
                by_condition = up.phase == "Skipped" and up.reason in SKIPPED_BY_CONDITION
                st.phase, st.reason = "Skipped", "UpstreamSkipped" if by_condition else "UpstreamFailed"
                st.message = f"skipped because step {d} {up.phase.lower()}"
                break


def stop(w: Work, why: str) -> None:
    """Cancel every unfinished step: running Jobs are deleted."""
    for name in w.order:
        st = w.by_name[name]
        if st.phase in TERMINAL_STEP:
            continue
        job = w.job(name)
        if job is not None and job.state in {"Active", "Suspended"}:
            w.plan.delete.append(job.name)
        st.phase, st.message = "Cancelled", why
        st.completion_time = st.completion_time or ts(w.now)


def fatal(w: Work) -> list[str]:
    """Failed steps that fail the pipeline (onFailure: fail), in manifest order."""
    return [
        s.name for s in w.status.step_statuses if s.phase == "Failed" and w.defs[s.name].on_failure == "fail"
    ]
