"""Pins the sequence's status (core/sequentialjobs/status.py): its phase by precedence (deadline, a
step that stopped it, all passed, suspended, running, pending), the seed's counts and progress
(state, currentIndex, completedIndices, STEP as 2/3), the conditions with observedGeneration
(Progressing False once finished either way; Available and Complete on success; Failed; Suspended),
one Event at the end, and the status of a spec that did not validate."""

from __future__ import annotations

from typing import Any

import pytest

from dataworks.api import sequentialjob as api
from dataworks.core.kit.plan import Meta
from dataworks.core.sequentialjobs import status, validation
from dataworks.core.sequentialjobs.work import Work
from tests.builders.sequentialjobs import (
    T0,
    SqjBuilder,
    StatusBuilder,
    make_sqj,
    make_status,
    make_work,
    stamp,
)

SQJ = make_sqj("s", "a", "b", "c")
CONTINUE_B = make_sqj("s", "a", "b", "c").policy("b", onFailure="continue")
SUSPENDED = make_sqj("s", "a", "b", "c").set(suspend=True)
DEADLINE = make_sqj("s", "a", "b", "c").set(activeDeadlineSeconds=5)


def conditions(w: Work) -> dict[str, tuple[str, str, int | None]]:
    return {c.type: (c.status, c.reason, c.observed_generation) for c in w.status.conditions}


def finished(builder: SqjBuilder, st: StatusBuilder, *, deadline: bool = False, generation: int = 3) -> Work:
    w = make_work(builder, st, generation=generation)
    w.deadline_hit = deadline
    status.finish(w)
    return w


@pytest.mark.parametrize(
    ("builder", "st", "deadline", "expected", "state"),
    [
        pytest.param(
            SQJ,
            make_status("Pending").step("a").step("b").step("c"),
            False,
            ("Pending", "Pending", "0/3"),
            (0, 0, 0),
            id="pending",
        ),
        pytest.param(
            SQJ,
            make_status().set(start_time=stamp()).step("a", "Completed").step("b", "Running").step("c"),
            False,
            ("Running", "JobRunning", "2/3"),
            (1, 1, 0),
            id="running",
        ),
        pytest.param(
            SUSPENDED,
            make_status().set(start_time=stamp()).step("a", "Completed").step("b", "Running").step("c"),
            False,
            ("Suspended", "Suspended", "2/3"),
            (1, 1, 0),
            id="suspended",
        ),
        pytest.param(
            SQJ,
            make_status().step("a", "Completed").step("b", "Completed").step("c", "Completed"),
            False,
            ("Completed", "Completed", "3/3"),
            (0, 3, 0),
            id="completed",
        ),
        pytest.param(
            SQJ,
            make_status()
            .step("a", "Completed")
            .step("b", "Failed", reason="BackoffLimitExceeded")
            .step("c", "Skipped"),
            False,
            ("Failed", "JobFailed", "2/3"),
            (0, 1, 1),
            id="failed",
        ),
        pytest.param(
            CONTINUE_B,
            make_status().step("a", "Completed").step("b", "Failed").step("c", "Completed"),
            False,
            ("Completed", "Completed", "3/3"),
            (0, 2, 1),
            id="completed-past-a-tolerated-failure",
        ),
        pytest.param(
            DEADLINE,
            make_status().step("a", "Completed").step("b", "Cancelled").step("c", "Skipped"),
            True,
            ("Failed", "DeadlineExceeded", "2/3"),
            (0, 1, 0),
            id="deadline",
        ),
    ],
)
def test_phase_counts_and_progress(
    builder: SqjBuilder,
    st: StatusBuilder,
    deadline: bool,
    expected: tuple[str, str, str],
    state: tuple[int, int, int],
) -> None:
    phase, reason, step = expected
    w = finished(builder, st, deadline=deadline)
    assert (w.status.phase, w.status.progress.step) == (phase, step)
    assert (w.status.state.active, w.status.state.succeeded, w.status.state.failed) == state
    assert w.status.progress.completed_indices == [s.index for s in w.status.steps if s.phase == "Completed"]
    terminal = phase in {"Completed", "Failed"}
    assert conditions(w) == {
        "Progressing": ("False" if terminal else "True", reason, 3),
        "Available": ("True" if phase == "Completed" else "False", reason, 3),
        "Complete": ("True" if phase == "Completed" else "False", reason, 3),
        "Failed": ("True" if phase == "Failed" else "False", reason, 3),
        "Suspended": ("True" if phase == "Suspended" else "False", reason, 3),
    }
    assert (w.status.completion_time is not None) is terminal
    ends = {"Completed": ["SequenceCompleted"], "Failed": ["SequenceFailed"]}.get(phase, [])
    assert [e.reason for e in w.plan.events] == ends


@pytest.mark.parametrize(
    ("builder", "st", "message"),
    [
        pytest.param(
            SQJ,
            make_status()
            .step("a", "Completed")
            .step("b", "Failed", reason="OOMKilled", message="Killed")
            .step("c", "Skipped"),
            "job 1 (b) failed: OOMKilled (Killed)",
            id="failed",
        ),
        pytest.param(
            CONTINUE_B,
            make_status().step("a", "Completed").step("b", "Failed").step("c", "Completed"),
            "2 of 3 jobs completed; job 1 (b) failed with onFailure: continue",
            id="tolerated",
        ),
        pytest.param(
            SQJ,
            make_status().step("a", "Completed").step("b", "Running").step("c"),
            "job 1 of 3 (b) running",
            id="running",
        ),
    ],
)
def test_message(builder: SqjBuilder, st: StatusBuilder, message: str) -> None:
    assert finished(builder, st).status.message == message


def test_the_end_event_is_sent_once() -> None:
    done = make_status("Completed").step("a", "Completed").step("b", "Completed").step("c", "Completed")
    assert finished(SQJ, done).plan.events == []


def test_progress_of_a_sequence_stopped_at_its_first_step() -> None:
    w = finished(SQJ, make_status().step("a", "Failed").step("b", "Skipped").step("c", "Skipped"))
    assert (w.status.progress.current_index, w.status.progress.step) == (0, "1/3")


def test_a_finished_sequence_keeps_its_outcome() -> None:
    old = make_status("Completed").set(completion_time=stamp(9)).step("a", "Completed").step("b", "Completed")
    w = make_work(make_sqj("s", "a", "b", "new"), old, generation=4)
    status.keep(w)
    assert [s.name for s in w.status.steps] == ["a", "b"]  # the edit applies at its next re-run
    assert w.status.observed_generation == 4


@pytest.mark.parametrize("errors", [1, 7])
def test_invalid(errors: int) -> None:
    found: list[Any] = [validation.FieldError(f"spec.f{i}", "bad") for i in range(errors)]
    plan = status.invalid(Meta("s", "ns", generation=2), api.SequentialJobStatus(), found, T0)
    st = plan.status
    assert st.phase == "Failed"
    assert st.message is not None
    assert st.message.startswith("invalid spec: spec.f0: bad")
    assert st.message.endswith("and 2 more") is (errors > 5)
    assert {c.type: (c.status, c.reason, c.observed_generation) for c in st.conditions} == {
        "Progressing": ("False", "ValidationFailed", 2),
        "Available": ("False", "ValidationFailed", 2),
        "Complete": ("False", "ValidationFailed", 2),
        "Failed": ("True", "ValidationFailed", 2),
        "Suspended": ("False", "ValidationFailed", 2),
    }
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "ValidationFailed")]
    again = status.invalid(Meta("s", "ns", generation=2), st, found, T0)
    assert again.events == []  # once per distinct message
