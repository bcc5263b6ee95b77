"""Pins which Events a pass sends about steps (core/pipelines/events.py): one per step transition
(a new phase, or the same phase in a new attempt), StepStarted and StepCompleted only with step
events on, StepFailed always and as a Warning, nothing for waiting, skipped or cancelled steps;
and SpecChangeIgnored for an edit that reaches a step which already started (not one that waits,
nor one whose starting spec is unknown)."""

from __future__ import annotations

from typing import Any

import pytest

from dataworks.core.pipelines import events
from tests.builders.pipelines import StatusBuilder, make_pipeline, make_status, make_work


def transition(
    old: StatusBuilder, *, normal: bool = True, **now: Any
) -> list[tuple[str, str, str, str | None]]:
    """The step events when step a goes from its phase in `old` to the fields in `now`."""
    w = make_work(make_pipeline("p").step("a"), old)
    for k, v in now.items():
        setattr(w.by_name["a"], k, v)
    events.step_events(w, normal=normal)
    return [(e.type, e.reason, e.message, e.step) for e in w.plan.events]


STARTED = [("Normal", "StepStarted", "step a started (attempt 1, job p-a)", "a")]
COMPLETED = [("Normal", "StepCompleted", "step a completed", "a")]
FAILED = [("Warning", "StepFailed", "step a failed: OOMKilled: exit 137", "a")]
RUNNING = {"phase": "Running", "job_name": "p-a"}
DIED = {"phase": "Failed", "message": "OOMKilled: exit 137"}


@pytest.mark.parametrize(
    ("old", "normal", "now", "expected"),
    [
        pytest.param(make_status(), True, RUNNING, STARTED, id="new-step-started"),
        pytest.param(make_status().step("a"), True, RUNNING, STARTED, id="waiting-to-running"),
        pytest.param(make_status().step("a", "Running"), True, RUNNING, [], id="still-running"),
        pytest.param(
            make_status().step("a", "Running"),
            True,
            {**RUNNING, "attempt": 2, "job_name": "p-a-a2"},
            [("Normal", "StepStarted", "step a started (attempt 2, job p-a-a2)", "a")],
            id="new-attempt-started-again",
        ),
        pytest.param(
            make_status().step("a", "Running"), True, {"phase": "Completed"}, COMPLETED, id="completed"
        ),
        pytest.param(make_status().step("a", "Completed"), True, {"phase": "Completed"}, [], id="said-once"),
        pytest.param(make_status().step("a", "Running"), True, DIED, FAILED, id="failed-is-a-warning"),
        pytest.param(
            make_status().step("a", "Failed"), True, {**DIED, "attempt": 2}, FAILED, id="failed-again"
        ),
        pytest.param(make_status().step("a"), False, RUNNING, [], id="quiet-no-started"),
        pytest.param(
            make_status().step("a", "Running"), False, {"phase": "Completed"}, [], id="quiet-no-completed"
        ),
        pytest.param(make_status().step("a", "Running"), False, DIED, FAILED, id="quiet-still-failed"),
        pytest.param(make_status().step("a", "Running"), True, {"phase": "Cancelled"}, [], id="cancelled"),
        pytest.param(make_status().step("a"), True, {"phase": "Skipped"}, [], id="skipped"),
        pytest.param(
            make_status().step("a", "Failed"), True, {"phase": "Waiting", "attempt": 2}, [], id="retrying"
        ),
    ],
)
def test_step_events(
    old: StatusBuilder, normal: bool, now: dict[str, Any], expected: list[tuple[str, str, str, str | None]]
) -> None:
    assert transition(old, normal=normal, **now) == expected


def test_one_event_per_step_in_manifest_order() -> None:
    b = make_pipeline("p").step("z").step("y").step("x")
    w = make_work(b, make_status().step("z", "Running").step("y", "Running").step("x"))
    w.by_name["z"].phase = "Completed"
    w.by_name["y"].phase, w.by_name["y"].message = "Failed", "boom"
    w.by_name["x"].phase, w.by_name["x"].job_name = "Running", "p-x"
    events.step_events(w, normal=True)
    assert [(e.reason, e.step) for e in w.plan.events] == [
        ("StepCompleted", "z"),
        ("StepFailed", "y"),
        ("StepStarted", "x"),
    ]


EDITED = "changed"  # spec_hash of a definition that is no longer the current one


@pytest.mark.parametrize(
    ("phase", "spec_hash", "expected"),
    [
        pytest.param(
            "Running",
            EDITED,
            "step a is running: the edit applies to its next attempt (spec.retry)",
            id="running",
        ),
        pytest.param(
            "Completed",
            EDITED,
            "step a has finished: the edit applies to its next attempt (spec.retry)",
            id="completed",
        ),
        pytest.param(
            "Failed",
            EDITED,
            "step a has finished: the edit applies to its next attempt (spec.retry)",
            id="failed",
        ),
        pytest.param("Waiting", EDITED, None, id="waiting-takes-the-edit"),
        pytest.param("Skipped", EDITED, None, id="skipped"),
        pytest.param("Cancelled", EDITED, None, id="cancelled"),
        pytest.param("Running", "current", None, id="unchanged"),
        pytest.param("Running", None, None, id="unknown-starting-spec"),
    ],
)
def test_ignored_changes(phase: str, spec_hash: str | None, expected: str | None) -> None:
    b = make_pipeline("p").step("a", args=["v2"]).step("b")
    w = make_work(b, make_status().step("a", phase).step("b", "Running"), generation=2)
    for st in w.status.step_statuses:
        st.spec_hash = w.defs[st.name].fingerprint()  # b started with its current definition
    w.by_name["a"].spec_hash = w.defs["a"].fingerprint() if spec_hash == "current" else spec_hash
    events.ignored_changes(w)
    got = [(e.type, e.reason, e.message) for e in w.plan.events]
    assert got == ([("Normal", "SpecChangeIgnored", expected)] if expected else [])
