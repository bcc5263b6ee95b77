"""Which Events a pass sends about steps (pure layer, Pipeline policy).

One Event per step transition: StepStarted and StepCompleted (Normal; off
with `stepEvents: false`), StepFailed (Warning, always), and SpecChangeIgnored
when an edit reaches a step that already started.
"""

from __future__ import annotations

from dataworks.core.kit.plan import Event
from dataworks.core.pipelines.work import Work


def step_events(w: Work, *, normal: bool) -> None:
    for st in w.status.step_statuses:
        before = w.previous.get(st.name)
        if before is not None and before.phase == st.phase and before.attempt == st.attempt:
            continue
        if not normal and st.phase in {"Running", "Completed"}:
            continue
        if st.phase == "Running":
            message = f"step {st.name} started (attempt {st.attempt}, job {st.job_name})"
            w.plan.events.append(Event("Normal", "StepStarted", message, step=st.name))
        elif st.phase == "Completed":
            w.plan.events.append(Event("Normal", "StepCompleted", f"step {st.name} completed", step=st.name))
        elif st.phase == "Failed":
            message = f"step {st.name} failed: {st.message}"
            w.plan.events.append(Event("Warning", "StepFailed", message, step=st.name))


def ignored_changes(w: Work) -> None:
    """Edits to steps that already started do not change their Jobs: say so once."""
    for name in w.order:
        st = w.by_name[name]
        started = st.phase in {"Running", "Completed", "Failed"} and st.spec_hash
        if started and st.spec_hash != w.defs[name].fingerprint():
            state = "is running" if st.phase == "Running" else "has finished"
            w.plan.events.append(
                Event(
                    "Normal",
                    "SpecChangeIgnored",
                    f"step {name} {state}: the edit applies to its next attempt (spec.retry)",
                )
            )
