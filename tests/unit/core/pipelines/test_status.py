"""Pins how a pass sums up the pipeline (core/pipelines/status.py): the phase by precedence
(Cancelled, deadline, Failed once every step ended, Completed, Suspended, Running, Pending) with
its reason and message, a finished pipeline keeping its outcome whatever spec.shutdown says
later, the counters, start and completion times and duration, the Complete, Failed and Suspended
conditions (moving only on flips), the terminal Event sent once on the transition, and the
status of a spec that did not validate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dataworks.api import pipeline as api
from dataworks.core.kit.plan import Meta
from dataworks.core.pipelines import status
from dataworks.core.pipelines.steps import SpecError
from tests.builders.pipelines import (
    T0,
    PipelineBuilder,
    StatusBuilder,
    make_pipeline,
    make_status,
    make_work,
    stamp,
)

NOW = T0 + timedelta(seconds=75)


def abc(**spec: Any) -> PipelineBuilder:
    """a and b fail the pipeline when they fail; c only skips its dependents."""
    b = make_pipeline("p").step("a").step("b").step("c", onFailure="skip-dependents")
    return b.set(**spec)


def steps(old_phase: str = "Running", **phases: Any) -> StatusBuilder:
    """Steps a, b, c in the given phases (Waiting by default); a value may be (phase, fields)."""
    s = make_status(phase=old_phase)
    for name in "abc":
        given = phases.get(name, "Waiting")
        phase, fields = given if isinstance(given, tuple) else (given, {})
        s.step(name, phase, **fields)
    return s


def finish(b: PipelineBuilder, old: StatusBuilder, *, deadline_hit: bool = False) -> Any:
    w = make_work(b, old, now=NOW)
    status.finish(w, deadline_hit=deadline_hit)
    return w


OOM = ("Failed", {"reason": "OOMKilled", "message": "BackoffLimitExceeded: Job has reached the limit"})


@pytest.mark.parametrize(
    ("spec", "old", "deadline_hit", "expected"),
    [
        pytest.param(
            {"shutdown": "Terminate", "activeDeadlineSeconds": 60},
            steps(a=OOM, b="Cancelled", c="Cancelled"),
            True,
            ("Cancelled", "Cancelled", "cancelled by spec.shutdown=Terminate"),
            id="shutdown-over-deadline",
        ),
        pytest.param(
            {"activeDeadlineSeconds": 60},
            steps(a=OOM, b="Cancelled", c="Cancelled"),
            True,
            ("Failed", "DeadlineExceeded", "pipeline exceeded activeDeadlineSeconds=60"),
            id="deadline-over-step-failure",
        ),
        pytest.param(
            {}, steps(a=OOM, b="Running"), False, ("Running", "Running", None), id="failed-waits-for-running"
        ),
        pytest.param(
            {},
            steps(a=OOM, b="Completed", c="Completed"),
            False,
            (
                "Failed",
                "OOMKilled",
                "step a failed: OOMKilled (BackoffLimitExceeded: Job has reached the limit)",
            ),
            id="failed-names-step-reason-message",
        ),
        pytest.param(
            {},
            steps(a=("Failed", {"reason": "Error", "message": "Error"}), b="Completed", c="Completed"),
            False,
            ("Failed", "Error", "step a failed: Error"),
            id="message-same-as-reason-not-repeated",
        ),
        pytest.param(
            {},
            steps(a=OOM, b=("Failed", {"reason": "Error"}), c="Completed"),
            False,
            (
                "Failed",
                "OOMKilled",
                "step a failed: OOMKilled (BackoffLimitExceeded: Job has reached the limit)"
                " (and 1 more failed steps)",
            ),
            id="first-fatal-and-count",
        ),
        pytest.param(
            {},
            steps(a="Completed", b="Completed", c=("Failed", {"reason": "Error"})),
            False,
            ("Completed", "Completed", "2 of 3 steps completed"),
            id="skip-dependents-failure-completes",
        ),
        pytest.param(
            {"suspend": True},
            steps(a="Completed", b="Running"),
            False,
            ("Suspended", "Suspended", "suspended by spec.suspend"),
            id="suspended",
        ),
        pytest.param(
            {"suspend": True},
            steps(a="Completed", b="Completed", c="Completed"),
            False,
            ("Completed", "Completed", "3 of 3 steps completed"),
            id="suspend-after-the-end-completes",
        ),
        pytest.param({}, steps(old_phase="Pending"), False, ("Pending", "Pending", None), id="pending"),
        pytest.param(
            {},
            steps(a="Completed").set(start_time=stamp(1)),
            False,
            ("Running", "Running", None),
            id="between-steps-running",
        ),
    ],
)
def test_phase(
    spec: dict[str, Any], old: StatusBuilder, deadline_hit: bool, expected: tuple[str, str, str | None]
) -> None:
    w = finish(abc(**spec), old, deadline_hit=deadline_hit)
    failed = next(c for c in w.status.conditions if c.type == "Failed")
    assert (w.status.phase, failed.reason, w.status.message) == expected


@pytest.mark.parametrize(
    ("old", "expected"),
    [
        pytest.param(
            steps(old_phase="Pending"),
            {"start_time": None, "completion_time": None, "duration": None, "progress": "0/3"},
            id="nothing-started",
        ),
        pytest.param(
            steps(a="Running"),
            {"start_time": stamp(75), "completion_time": None, "progress": "0/3", "failed_steps": 0},
            id="first-running-starts-the-clock",
        ),
        pytest.param(
            steps(a="Completed", b="Running").set(start_time=stamp(5)),
            {"start_time": stamp(5), "completed_steps": 1, "total_steps": 3, "progress": "1/3"},
            id="start-kept",
        ),
        pytest.param(
            steps(a="Completed", b="Failed", c="Completed").set(start_time=stamp(5)),
            {"completion_time": stamp(75), "duration": "1m10s", "failed_steps": 1, "progress": "2/3"},
            id="finished-gets-time-and-duration",
        ),
        pytest.param(
            steps("Completed", a="Completed", b="Completed", c="Completed").set(
                start_time=stamp(0), completion_time=stamp(30), duration="30s"
            ),
            {"completion_time": stamp(30), "duration": "30s"},
            id="completion-time-kept",
        ),
        pytest.param(
            steps("Failed", a="Completed", b="Waiting", c="Completed").set(
                start_time=stamp(0), completion_time=stamp(30), duration="30s"
            ),
            {"completion_time": None, "duration": None, "phase": "Running"},
            id="reopened-clears-end",
        ),
    ],
)
def test_counters_and_times(old: StatusBuilder, expected: dict[str, Any]) -> None:
    w = finish(abc(), old)
    got = w.status.model_dump()
    assert {k: got[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("spec", "old", "conditions"),
    [
        pytest.param(
            {},
            steps(a="Running"),
            {"Complete": "False", "Failed": "False", "Suspended": "False"},
            id="running",
        ),
        pytest.param(
            {},
            steps(a="Completed", b="Completed", c="Completed"),
            {"Complete": "True", "Failed": "False", "Suspended": "False"},
            id="completed",
        ),
        pytest.param(
            {},
            steps(a="Failed", b="Completed", c="Completed"),
            {"Complete": "False", "Failed": "True", "Suspended": "False"},
            id="failed",
        ),
        pytest.param(
            {"suspend": True},
            steps(a="Running"),
            {"Complete": "False", "Failed": "False", "Suspended": "True"},
            id="suspended",
        ),
        pytest.param(
            {"shutdown": "Terminate"},
            steps(a="Cancelled", b="Cancelled", c="Cancelled"),
            {"Complete": "False", "Failed": "False", "Suspended": "False"},
            id="cancelled-is-neither",
        ),
    ],
)
def test_conditions(spec: dict[str, Any], old: StatusBuilder, conditions: dict[str, str]) -> None:
    w = finish(abc(**spec), old)
    assert {c.type: c.status for c in w.status.conditions} == conditions
    assert {c.observed_generation for c in w.status.conditions} == {1}


def test_condition_transition_times_move_only_on_flips() -> None:
    def next_pass(old: api.PipelineStatus, seconds: int, **phases: str) -> api.PipelineStatus:
        """One more pass, `seconds` after T0, with the steps in `phases`."""
        old = old.model_copy(update={"step_statuses": steps(**phases).build().step_statuses})
        w = make_work(abc(), old, now=T0 + timedelta(seconds=seconds))
        status.finish(w, deadline_hit=False)
        return w.status

    running = next_pass(api.PipelineStatus(), 10, a="Running")
    still = next_pass(running, 20, a="Completed", b="Running")
    done = next_pass(still, 30, a="Completed", b="Completed", c="Completed")
    assert {c.type: c.last_transition_time for c in still.conditions} == dict.fromkeys(
        ("Complete", "Failed", "Suspended"), stamp(10)
    )
    assert {c.type: c.last_transition_time for c in done.conditions} == {
        "Complete": stamp(30),
        "Failed": stamp(10),
        "Suspended": stamp(10),
    }
    assert {c.reason for c in done.conditions} == {"Completed"}  # reasons follow every write


@pytest.mark.parametrize(
    ("spec", "old", "events"),
    [
        pytest.param(
            {},
            steps("Running", a="Completed", b="Completed", c="Completed"),
            [("Normal", "PipelineCompleted", "3 of 3 steps completed")],
            id="completed",
        ),
        pytest.param(
            {},
            steps("Running", a=("Failed", {"reason": "Error"}), b="Completed", c="Completed"),
            [("Warning", "PipelineFailed", "step a failed: Error")],
            id="failed-is-a-warning",
        ),
        pytest.param(
            {"shutdown": "Terminate"},
            steps("Running", a="Cancelled", b="Cancelled", c="Cancelled"),
            [("Normal", "PipelineCancelled", "cancelled by spec.shutdown=Terminate")],
            id="cancelled",
        ),
        pytest.param({}, steps("Completed", a="Completed", b="Completed", c="Completed"), [], id="said-once"),
        pytest.param({}, steps("Pending", a="Running"), [], id="no-event-while-running"),
        pytest.param({"suspend": True}, steps("Running", a="Running"), [], id="no-event-on-suspend"),
    ],
)
def test_terminal_event(spec: dict[str, Any], old: StatusBuilder, events: list[tuple[str, str, str]]) -> None:
    w = finish(abc(**spec), old)
    assert [(e.type, e.reason, e.message) for e in w.plan.events] == events


@pytest.mark.parametrize(
    ("spec", "old", "deadline_hit", "expected"),
    [
        pytest.param(
            {"shutdown": "Terminate"},
            steps("Completed", a="Completed", b="Completed", c="Completed"),
            False,
            ("Completed", "Completed"),
            id="completed-then-cancel",
        ),
        pytest.param(
            {"shutdown": "Terminate"},
            steps("Failed", a=("Failed", {"reason": "Error"}), b="Completed", c="Completed"),
            False,
            ("Failed", "Error"),
            id="failed-then-cancel",
        ),
        pytest.param(
            {"shutdown": "Terminate", "activeDeadlineSeconds": 60},
            steps("Failed", a="Cancelled", b="Cancelled", c="Cancelled"),
            True,
            ("Failed", "DeadlineExceeded"),
            id="deadline-failed-then-cancel",
        ),
        pytest.param(
            {},
            steps("Cancelled", a="Completed", b="Cancelled", c="Cancelled"),
            False,
            ("Cancelled", "Cancelled"),
            id="cancelled-then-shutdown-cleared",
        ),
        pytest.param(
            {},
            steps("Cancelled", a=("Failed", {"reason": "Error"}), b="Cancelled", c="Cancelled"),
            False,
            ("Cancelled", "Cancelled"),
            id="cancelled-with-a-failed-step-then-cleared",
        ),
        pytest.param(
            {},
            steps("Cancelled", a="Completed", b="Waiting", c="Cancelled").set(start_time=stamp(1)),
            False,
            ("Running", "Running"),
            id="cancelled-then-retried-runs",
        ),
        pytest.param(
            {"shutdown": "Terminate"},
            steps("Suspended", a="Completed", b="Cancelled", c="Cancelled"),
            False,
            ("Cancelled", "Cancelled"),
            id="unfinished-is-cancelled",
        ),
    ],
)
def test_a_finished_pipeline_keeps_its_outcome(
    spec: dict[str, Any], old: StatusBuilder, deadline_hit: bool, expected: tuple[str, str]
) -> None:
    w = finish(abc(**spec), old, deadline_hit=deadline_hit)
    failed = next(c for c in w.status.conditions if c.type == "Failed")
    assert (w.status.phase, failed.reason) == expected
    assert [e.reason for e in w.plan.events] == (
        ["PipelineCancelled"] if old.fields["phase"] == "Suspended" else []
    )


def errors(n: int) -> list[SpecError]:
    return [SpecError(f"s{i}", "config.sql", "is required") for i in range(n)]


@pytest.mark.parametrize(
    ("count", "message"),
    [
        pytest.param(1, "invalid spec: step 's0': config.sql: is required", id="one"),
        pytest.param(5, "invalid spec: " + "; ".join(str(e) for e in errors(5)), id="five-listed"),
        pytest.param(
            7, "invalid spec: " + "; ".join(str(e) for e in errors(5)) + "; and 2 more", id="more-counted"
        ),
    ],
)
def test_invalid(count: int, message: str) -> None:
    plan = status.invalid(Meta("p", "ns", generation=3), api.PipelineStatus(), errors(count), NOW)
    assert (plan.status.phase, plan.status.message, plan.status.observed_generation) == ("Failed", message, 3)
    assert plan.status.completion_time == stamp(75)
    got = {c.type: (c.status, c.reason, c.observed_generation) for c in plan.status.conditions}
    assert got == {
        "Valid": ("False", "InvalidSpec", 3),
        "Failed": ("True", "InvalidSpec", 3),
        "Complete": ("False", "InvalidSpec", 3),
    }
    assert [(e.type, e.reason, e.message) for e in plan.events] == [("Warning", "InvalidSpec", message)]
    assert plan.create == []


def test_invalid_again_is_quiet_and_keeps_its_times() -> None:
    first = status.invalid(Meta("p", "ns"), api.PipelineStatus(), errors(1), NOW).status
    again = status.invalid(Meta("p", "ns", generation=2), first, errors(1), NOW + timedelta(hours=1))
    assert again.events == []
    assert again.status.completion_time == stamp(75)
    assert {c.last_transition_time for c in again.status.conditions} == {stamp(75)}
    changed = status.invalid(Meta("p", "ns", generation=3), first, errors(2), NOW + timedelta(hours=1))
    assert [e.reason for e in changed.events] == ["InvalidSpec"]
    assert (first.observed_generation, first.message) == (
        1,
        "invalid spec: step 's0': config.sql: is required",
    )
