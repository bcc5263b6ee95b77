"""Pins declarative re-runs (core/sequentialjobs/rerun.py): a request is applied once per id and only
to a finished sequence; it re-runs from the named step (default: the first that did not complete),
that step and every later one, each that had run as a new attempt; earlier steps keep their Jobs
and outputs; the sequence forgets its outcome and its start; a request in the manifest a
SequentialJob is created with, or one that finds nothing to re-run, changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from dataworks.core.sequentialjobs import rerun
from tests.builders.sequentialjobs import StatusBuilder, make_sqj, make_status, make_work, stamp


def failed_at_b() -> StatusBuilder:
    """a completed (with an output), b failed, c was skipped."""
    return (
        make_status("Failed")
        .set(start_time=stamp(0), completion_time=stamp(60), message="job 1 (b) failed")
        .step("a", "Completed", output="rows=3", completion_time=stamp(10))
        .step("b", "Failed", reason="BackoffLimitExceeded", output="boom")
        .step("c", "Skipped", reason="SequenceStopped")
    )


def continued_past_b() -> StatusBuilder:
    """b failed with onFailure: continue, c completed afterwards."""
    return (
        make_status("Completed")
        .set(completion_time=stamp(60))
        .step("a", "Completed")
        .step("b", "Failed")
        .step("c", "Completed")
    )


def all_completed() -> StatusBuilder:
    return (
        make_status("Completed")
        .set(completion_time=stamp(60))
        .step("a", "Completed")
        .step("b", "Completed")
        .step("c", "Completed")
    )


def runs(w: Any) -> dict[str, tuple[str, int, str | None]]:
    return {s.name: (s.phase, s.attempt, s.job_name) for s in w.status.steps}


@pytest.mark.parametrize(
    ("request_", "status", "expected", "event"),
    [
        pytest.param(None, failed_at_b(), None, None, id="no-request"),
        pytest.param({"id": "r1"}, failed_at_b().set(last_retry_id="r1"), None, None, id="applied-once"),
        pytest.param(
            {"id": "r2"},
            failed_at_b(),
            {"a": ("Completed", 1, "s-a"), "b": ("Waiting", 2, None), "c": ("Waiting", 1, None)},
            "Rerun",
            id="from-the-failed-step",
        ),
        pytest.param(
            {"id": "r2", "step": "a"},
            failed_at_b(),
            {"a": ("Waiting", 2, None), "b": ("Waiting", 2, None), "c": ("Waiting", 1, None)},
            "Rerun",
            id="from-a-completed-step",
        ),
        pytest.param(
            {"id": "r2"},
            continued_past_b(),
            {"a": ("Completed", 1, "s-a"), "b": ("Waiting", 2, None), "c": ("Waiting", 2, None)},
            "Rerun",
            id="later-completed-steps-run-again",
        ),
        pytest.param(
            {"id": "r2", "step": "c"},
            all_completed(),
            {"a": ("Completed", 1, "s-a"), "b": ("Completed", 1, "s-b"), "c": ("Waiting", 2, None)},
            "Rerun",
            id="named-last-step",
        ),
        pytest.param({"id": "r2"}, all_completed(), None, "RetryIgnored", id="nothing-to-rerun"),
        pytest.param(
            {"id": "r2"},
            make_status("Running").step("a", "Completed").step("b", "Running").step("c"),
            None,
            "RetryIgnored",
            id="still-running",
        ),
    ],
)
def test_rerun(
    request_: dict[str, str] | None,
    status: StatusBuilder,
    expected: dict[str, tuple[str, int, str | None]] | None,
    event: str | None,
) -> None:
    w = make_work(make_sqj("s", "a", "b", "c").set(retry=request_), status)
    before = runs(w)
    rerun.rerun(w)
    assert runs(w) == (expected or before)
    assert [e.reason for e in w.plan.events] == ([event] if event else [])
    assert w.status.last_retry_id == (request_["id"] if request_ else None)
    reopened = expected is not None
    assert w.finished is (status.fields["phase"] in {"Completed", "Failed"} and not reopened)
    if reopened:
        assert (w.status.phase, w.status.start_time, w.status.completion_time, w.status.message) == (
            "Running",
            None,
            None,
            None,
        )
        kept = {s.name: s.output for s in w.status.steps if s.phase == "Completed"}
        assert all(w.by_name[n].output == output for n, output in kept.items())
        assert all(s.output is None and s.reason is None for s in w.status.steps if s.phase == "Waiting")


def test_a_request_in_the_first_manifest_is_only_recorded() -> None:
    w = make_work(make_sqj("s", "a").set(retry={"id": "r0"}), None)
    rerun.rerun(w)
    assert (w.status.last_retry_id, w.plan.events) == ("r0", [])
