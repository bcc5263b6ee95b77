"""Pins the step Events (core/sequentialjobs/events.py): one per step transition, in step order, with
the seed's reasons and messages (JobStarted, JobCompleted; JobFailed as a Warning); a step that
started and ended unseen gets JobStarted before its outcome; a new run of a step starts anew;
nothing is repeated when nothing changed."""

from __future__ import annotations

import pytest

from dataworks.api import sequentialjob as api
from dataworks.core.sequentialjobs import events
from tests.builders.sequentialjobs import StatusBuilder, make_sqj, make_status, make_work


def after(w_status: StatusBuilder, **phases: tuple[str, int]) -> list[tuple[str, str, str]]:
    """The Events when the steps move from `w_status` to `phases` (name -> (phase, attempt))."""
    w = make_work(make_sqj("s", "a", "b"), w_status)
    for name, (phase, attempt) in phases.items():
        st = w.by_name[name]
        st.phase, st.attempt = phase, attempt  # type: ignore[assignment]
        st.job_name = f"s-{name}" if attempt == 1 else f"s-{name}-a{attempt}"
        st.message = "boom" if phase == "Failed" else None
    events.step_events(w)
    return [(e.type, e.reason, e.message) for e in w.plan.events]


STARTED_A = ("Normal", "JobStarted", "Started job 0 (a): Job s-a")
COMPLETED_A = ("Normal", "JobCompleted", "Job 0 (a) completed successfully")
STARTED_B = ("Normal", "JobStarted", "Started job 1 (b): Job s-b")


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [
        pytest.param(make_status().step("a").step("b"), {"a": ("Running", 1)}, [STARTED_A], id="started"),
        pytest.param(
            make_status().step("a", "Running").step("b"),
            {"a": ("Completed", 1), "b": ("Running", 1)},
            [COMPLETED_A, STARTED_B],
            id="completed-then-next",
        ),
        pytest.param(
            make_status().step("a", "Completed").step("b", "Running"),
            {"b": ("Failed", 1)},
            [("Warning", "JobFailed", "Job 1 (b) failed: boom")],
            id="failed",
        ),
        pytest.param(
            make_status().step("a").step("b"),
            {"a": ("Completed", 1)},
            [STARTED_A, COMPLETED_A],
            id="unseen-start",
        ),
        pytest.param(
            make_status().step("a", "Completed").step("b", "Failed"),
            {"b": ("Running", 2)},
            [("Normal", "JobStarted", "Started job 1 (b): Job s-b-a2")],
            id="new-run",
        ),
        pytest.param(make_status().step("a", "Running").step("b"), {"a": ("Running", 1)}, [], id="unchanged"),
        pytest.param(make_status().step("a", "Completed").step("b"), {"b": ("Skipped", 1)}, [], id="skipped"),
    ],
)
def test_step_events(
    before: StatusBuilder, now: dict[str, tuple[str, int]], expected: list[tuple[str, str, str]]
) -> None:
    assert after(before, **now) == expected


def test_events_name_their_step() -> None:
    w = make_work(make_sqj("s", "a"), make_status().step("a"))
    w.by_name["a"].phase, w.by_name["a"].job_name = "Running", "s-a"
    events.step_events(w)
    assert [e.step for e in w.plan.events] == ["a"]
    assert api.StepStatus(name="a").phase == "Waiting"
