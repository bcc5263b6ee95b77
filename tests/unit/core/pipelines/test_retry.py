"""Pins declarative retry requests (core/pipelines/retry.py): a request is applied once per id; with
no step it re-runs every failed, skipped and cancelled step; naming a step re-runs that step and
only those of its (transitive) dependents that did not complete; a step that ran gets a new
attempt (a new Job), one that never ran keeps its attempt; a re-run step and the pipeline forget
the previous outcome; nothing is applied while the pipeline is being cancelled; a request that
names a running step is refused, and one that re-opens a finished pipeline restarts its deadline."""

from __future__ import annotations

from typing import Any

import pytest

from dataworks.core.kit.clock import ts
from dataworks.core.pipelines import retry
from tests.builders.pipelines import (
    PipelineBuilder,
    StatusBuilder,
    make_pipeline,
    make_status,
    make_work,
    stamp,
)


def dag(**spec: Any) -> PipelineBuilder:
    """a -> b -> c, a -> d, and e on its own."""
    b = make_pipeline("p").step("a").step("b", depends_on=["a"]).step("c", depends_on=["b"])
    return b.step("d", depends_on=["a"]).step("e").set(**spec)


def finished(**phases: str) -> StatusBuilder:
    """A finished run: every step Completed unless given; Skipped steps never ran."""
    status = make_status(phase="Failed").set(completion_time=stamp(60), message="step b failed: Boom")
    for name in "abcde":
        phase = phases.get(name, "Completed")
        job = None if phase == "Skipped" else f"p-{name}"
        status.step(name, phase, job=job, start_time=stamp(1), completion_time=stamp(50))
    return status


def attempts(w: Any) -> dict[str, tuple[str, int]]:
    return {s.name: (s.phase, s.attempt) for s in w.status.step_statuses}


def failed_run() -> StatusBuilder:
    """b failed, so c was skipped; d was cancelled while it ran."""
    return finished(b="Failed", c="Skipped", d="Cancelled")


@pytest.mark.parametrize(
    ("request_", "status", "rerun"),
    [
        pytest.param(None, failed_run(), [], id="no-request"),
        pytest.param({"id": "r1"}, failed_run().set(last_retry_id="r1"), [], id="same-id-applied-once"),
        pytest.param({"id": "r2"}, failed_run(), ["b", "c", "d"], id="all-failed-skipped-cancelled"),
        pytest.param({"id": "r2", "step": "b"}, failed_run(), ["b", "c"], id="named-with-its-dependents"),
        pytest.param({"id": "r2", "step": "a"}, finished(c="Failed"), ["a", "c"], id="named-completed"),
        pytest.param({"id": "r2", "step": "a"}, finished(), ["a"], id="completed-dependents-keep"),
        pytest.param({"id": "r2", "step": "e"}, failed_run(), ["e"], id="named-without-dependents"),
        pytest.param({"id": "r2", "step": "ghost"}, failed_run(), [], id="unknown-step"),
        pytest.param({"id": "r2"}, finished(), [], id="nothing-to-redo"),
    ],
)
def test_apply_request(request_: dict[str, str] | None, status: StatusBuilder, rerun: list[str]) -> None:
    w = make_work(dag(retry=request_), status)
    before = attempts(w)
    assert retry.apply_request(w.spec, w.status, w.deps) == rerun
    after = attempts(w)
    changed = {n: after[n] for n in after if after[n] != before[n]}
    assert set(changed) <= set(rerun)  # a step that already waits shows no change
    assert all(after[n][0] == "Waiting" for n in rerun)
    assert w.status.last_retry_id == (request_["id"] if request_ else status.fields.get("last_retry_id"))
    finished_again = not rerun
    assert (w.status.completion_time is not None) is finished_again
    assert (w.status.message is not None) is finished_again


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(
            failed_run(),
            {"b": ("Waiting", 2), "c": ("Waiting", 1), "d": ("Waiting", 2)},
            id="ran-gets-new-attempt-never-ran-keeps",
        ),
        pytest.param(
            failed_run().step("x", "Failed", attempt=3, job="p-x-a3"),
            {"b": ("Waiting", 2), "x": ("Waiting", 4)},
            id="third-retry",
        ),
    ],
)
def test_attempts(status: StatusBuilder, expected: dict[str, tuple[str, int]]) -> None:
    w = make_work(dag(retry={"id": "r"}).step("x"), status)
    retry.apply_request(w.spec, w.status, w.deps)
    assert {n: attempts(w)[n] for n in expected} == expected


def test_a_rerun_step_forgets_its_previous_attempt() -> None:
    old = make_status(phase="Failed").step(
        "a",
        "Failed",
        start_time=stamp(1),
        completion_time=stamp(9),
        reason="OOMKilled",
        message="1 of 4 workers failed (OOMKilled)",
        workers={"active": 0, "succeeded": 3, "failed": 1, "failedIndexes": "2"},
        spec_hash="abc",
    )
    w = make_work(make_pipeline("p").step("a").set(retry={"id": "r"}), old)
    retry.apply_request(w.spec, w.status, w.deps)
    st = w.by_name["a"].model_dump(exclude={"spec_hash"})
    assert st == {
        "name": "a",
        "type": "",
        "phase": "Waiting",
        "job_name": None,
        "attempt": 2,
        "start_time": None,
        "completion_time": None,
        "message": None,
        "reason": None,
        "workers": None,
        "outputs": None,
    }


@pytest.mark.parametrize(
    ("spec", "events", "last_id"),
    [
        pytest.param(
            {"retry": {"id": "r9"}},
            [
                ("Normal", "StepRetrying", "step b will re-run as attempt 2"),
                ("Normal", "StepRetrying", "step c will re-run as attempt 1"),
                ("Normal", "StepRetrying", "step d will re-run as attempt 2"),
            ],
            "r9",
            id="one-event-per-step",
        ),
        pytest.param({"retry": {"id": "r9"}, "shutdown": "Terminate"}, [], None, id="not-while-cancelling"),
        pytest.param({"retry": {"id": "r9", "step": "ghost"}}, [], "r9", id="unknown-step-no-event"),
    ],
)
def test_retry(spec: dict[str, Any], events: list[tuple[str, str, str]], last_id: str | None) -> None:
    w = make_work(dag(**spec), failed_run())
    retry.retry(w)
    assert [(e.type, e.reason, e.message) for e in w.plan.events] == events
    assert w.status.last_retry_id == last_id
    assert w.old.last_retry_id is None  # the old status is never written to


@pytest.mark.parametrize(
    ("status", "request_", "refused"),
    [
        pytest.param(
            make_status(phase="Running").step("a", "Running", job="p-a"),
            {"id": "r1", "step": "a"},
            "retry r1 refused: step a is running (attempt 1)",
            id="named-running-step",
        ),
        pytest.param(
            make_status(phase="Running").step("a", "Running", job="p-a").step("e", "Failed", job="p-e"),
            {"id": "r1", "step": "e"},
            None,
            id="named-ended-step-while-another-runs",
        ),
        pytest.param(
            make_status(phase="Running").step("a", "Running", job="p-a").step("e", "Failed", job="p-e"),
            {"id": "r1"},
            None,
            id="unnamed-retries-only-ended-steps",
        ),
        pytest.param(
            make_status(phase="Running").step("a", "Running", job="p-a").set(last_retry_id="r1"),
            {"id": "r1", "step": "a"},
            None,
            id="spent-id-not-judged-again",
        ),
    ],
)
def test_a_retry_of_a_running_step_is_refused(
    status: StatusBuilder, request_: dict[str, str], refused: str | None
) -> None:
    w = make_work(dag(retry=request_), status)
    before = attempts(w)
    retry.retry(w)
    warnings = [e.message for e in w.plan.events if e.reason == "RetryRefused"]
    if refused is None:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert warnings[0].startswith(refused)
        assert attempts(w) == before  # nothing re-opened
        assert w.status.last_retry_id == request_["id"]  # spent


@pytest.mark.parametrize(
    ("old_phase", "restarted"),
    [("Failed", True), ("Cancelled", True), ("Completed", True), ("Running", False)],
)
def test_a_retry_that_reopens_a_finished_pipeline_restarts_its_deadline_clock(
    old_phase: str, restarted: bool
) -> None:
    status = failed_run().set(phase=old_phase, start_time=stamp(0))
    w = make_work(dag(retry={"id": "r"}), status)
    retry.retry(w)
    assert w.status.start_time == (ts(w.now) if restarted else stamp(0))
