"""Pins what failures do to the rest of the DAG (core/pipelines/failure.py): which upstream outcome
blocks a dependent (fail and skip-dependents do, continue does not; skipped and cancelled always
do), that skipping runs down a chain in one pass and names the blocking step, that stopping cancels
every unfinished step and deletes only live Jobs of the current attempt, and which failures are
fatal to the pipeline (onFailure: fail, in manifest order)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dataworks.core.pipelines import failure
from tests.builders.jobs import JobBuilder, step_job
from tests.builders.pipelines import (
    T0,
    PipelineBuilder,
    StatusBuilder,
    make_pipeline,
    make_status,
    make_work,
    phases,
    stamp,
)


def chain(on_failure: str = "fail") -> PipelineBuilder:
    """up -> mid -> low, and side (on its own)."""
    return (
        make_pipeline("p")
        .step("up", onFailure=on_failure)
        .step("mid", depends_on=["up"])
        .step("low", depends_on=["mid"])
        .step("side")
    )


@pytest.mark.parametrize(
    ("phase", "on_failure", "blocks"),
    [
        pytest.param("Failed", "fail", True, id="failed-fail"),
        pytest.param("Failed", "skip-dependents", True, id="failed-skip-dependents"),
        pytest.param("Failed", "continue", False, id="failed-continue"),
        pytest.param("Skipped", "continue", True, id="skipped-continue-still-blocks"),
        pytest.param("Cancelled", "continue", True, id="cancelled-blocks"),
        pytest.param("Completed", "fail", False, id="completed"),
        pytest.param("Running", "fail", False, id="running-not-yet"),
        pytest.param("Waiting", "fail", False, id="waiting-not-yet"),
    ],
)
def test_blocks(phase: str, on_failure: str, blocks: bool) -> None:
    w = make_work(chain(on_failure), make_status().step("up", phase))
    assert failure.blocks(w, "up") is blocks


@pytest.mark.parametrize(
    ("on_failure", "old", "expected"),
    [
        pytest.param(
            "fail",
            make_status().step("up", "Failed").step("side", "Running"),
            {"up": "Failed", "mid": "Skipped", "low": "Skipped", "side": "Running"},
            id="fail-skips-the-chain-in-one-pass",
        ),
        pytest.param(
            "skip-dependents",
            make_status().step("up", "Failed"),
            {"up": "Failed", "mid": "Skipped", "low": "Skipped", "side": "Waiting"},
            id="skip-dependents-skips-too",
        ),
        pytest.param(
            "continue",
            make_status().step("up", "Failed"),
            {"up": "Failed", "mid": "Waiting", "low": "Waiting", "side": "Waiting"},
            id="continue-skips-nothing",
        ),
        pytest.param(
            "continue",
            make_status().step("up", "Failed").step("mid", "Failed"),
            {"up": "Failed", "mid": "Failed", "low": "Skipped", "side": "Waiting"},
            id="continue-is-per-step",
        ),
        pytest.param(
            "fail",
            make_status().step("up", "Cancelled"),
            {"up": "Cancelled", "mid": "Skipped", "low": "Skipped", "side": "Waiting"},
            id="cancelled-upstream",
        ),
        pytest.param(
            "fail",
            make_status().step("up", "Failed").step("mid", "Completed"),
            {"up": "Failed", "mid": "Completed", "low": "Waiting", "side": "Waiting"},
            id="only-waiting-steps-are-skipped",
        ),
    ],
)
def test_skip_blocked(on_failure: str, old: StatusBuilder, expected: dict[str, str]) -> None:
    w = make_work(chain(on_failure), old)
    failure.skip_blocked(w)
    assert phases(w) == expected


@pytest.mark.parametrize(
    ("old", "step", "message"),
    [
        pytest.param(
            make_status().step("up", "Failed"), "mid", "skipped because step up failed", id="failed"
        ),
        pytest.param(
            make_status().step("up", "Failed"), "low", "skipped because step mid skipped", id="chain"
        ),
        pytest.param(
            make_status().step("up", "Cancelled"), "mid", "skipped because step up cancelled", id="cancelled"
        ),
        pytest.param(
            make_status().step("a", "Completed").step("b", "Failed").step("c", "Failed"),
            "d",
            "skipped because step b failed",
            id="first-blocking-dependency-named",
        ),
    ],
)
def test_skip_reason_and_message(old: StatusBuilder, step: str, message: str) -> None:
    b = chain().step("a").step("b").step("c").step("d", depends_on=["a", "b", "c"])
    w = make_work(b, old)
    failure.skip_blocked(w)
    st = w.by_name[step]
    assert (st.phase, st.reason, st.message) == ("Skipped", "UpstreamFailed", message)


@pytest.mark.parametrize(
    ("step", "phase", "job", "deleted", "expected"),
    [
        pytest.param("up", "Running", step_job("up"), ["p-up"], "Cancelled", id="active-job-deleted"),
        pytest.param(
            "up", "Running", step_job("up").suspended(), ["p-up"], "Cancelled", id="suspended-job-deleted"
        ),
        pytest.param("up", "Running", None, [], "Cancelled", id="unobserved-job-nothing-to-delete"),
        pytest.param("up", "Running", step_job("up").deleting(), [], "Cancelled", id="already-deleting"),
        pytest.param("up", "Waiting", None, [], "Cancelled", id="waiting-cancelled"),
        pytest.param("up", "Completed", step_job("up").succeeded(), [], "Completed", id="completed-kept"),
        pytest.param("up", "Failed", step_job("up").failed(), [], "Failed", id="failed-kept"),
        pytest.param("up", "Skipped", None, [], "Skipped", id="skipped-kept"),
        pytest.param(
            "up", "Running", step_job("up", 1).failed(), [], "Cancelled", id="finished-job-not-deleted"
        ),
    ],
)
def test_stop(step: str, phase: str, job: JobBuilder | None, deleted: list[str], expected: str) -> None:
    w = make_work(
        chain(), make_status().step(step, phase), [job] if job else [], now=T0 + timedelta(minutes=1)
    )
    failure.stop(w, "pipeline cancelled")
    assert w.plan.delete == deleted
    st = w.by_name[step]
    assert st.phase == expected
    if phase != expected:
        assert (st.message, st.completion_time) == ("pipeline cancelled", stamp(60))
    assert {s.phase for s in w.status.step_statuses if s.name != step} == {"Cancelled"}


def test_stop_keeps_a_recorded_completion_time() -> None:
    old = make_status().step("up", "Running", completion_time=stamp(5))
    w = make_work(chain(), old, now=T0 + timedelta(minutes=1))
    failure.stop(w, "pipeline deadline exceeded")
    assert (w.by_name["up"].message, w.by_name["up"].completion_time) == (
        "pipeline deadline exceeded",
        stamp(5),
    )


@pytest.mark.parametrize(
    ("failed", "expected"),
    [
        pytest.param({}, [], id="none"),
        pytest.param({"z": "fail"}, ["z"], id="fail"),
        pytest.param({"z": "skip-dependents"}, [], id="skip-dependents-not-fatal"),
        pytest.param({"z": "continue"}, [], id="continue-not-fatal"),
        pytest.param(
            {"z": "fail", "y": "continue", "x": "fail"}, ["z", "x"], id="manifest-order-not-alphabetical"
        ),
    ],
)
def test_fatal(failed: dict[str, str], expected: list[str]) -> None:
    b = make_pipeline("p")
    old = make_status()
    for name in ("z", "y", "x"):
        b.step(name, onFailure=failed.get(name, "fail"))
        old.step(name, "Failed" if name in failed else "Completed")
    assert failure.fatal(make_work(b, old)) == expected
