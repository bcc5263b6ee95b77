"""Pins the whole sequence's deadline (core/sequentialjobs/deadline.py): counted from the sequence's
start; once passed, the running step's Job is deleted and the step Cancelled, steps not yet run are
Skipped, all with reason DeadlineExceeded; a sequence with nothing left to run is not touched."""

from __future__ import annotations

from datetime import datetime

import pytest

from dataworks.core.kit.clock import parse_ts
from dataworks.core.sequentialjobs import deadline
from tests.builders.jobs import JobBuilder
from tests.builders.sequentialjobs import (
    StatusBuilder,
    make_sqj,
    make_status,
    make_work,
    phases,
    sqj_job,
    stamp,
)

SQJ = make_sqj("s", "a", "b", "c").set(activeDeadlineSeconds=60)


def running_b() -> StatusBuilder:
    return make_status().set(start_time=stamp(0)).step("a", "Completed").step("b", "Running").step("c")


@pytest.mark.parametrize(
    ("now", "expected"),
    [(parse_ts(stamp(59)), False), (parse_ts(stamp(60)), False), (parse_ts(stamp(61)), True)],
)
def test_passed(now: datetime, expected: bool) -> None:
    assert deadline.passed(make_work(SQJ, running_b(), now=now)) is expected


def test_no_deadline_never_passes() -> None:
    assert not deadline.passed(make_work(make_sqj("s", "a"), running_b(), now=parse_ts(stamp(10**6))))


@pytest.mark.parametrize(
    ("status", "jobs", "deleted", "expected"),
    [
        pytest.param(
            running_b(),
            [sqj_job("b").started()],
            ["s-b"],
            {"a": "Completed", "b": "Cancelled", "c": "Skipped"},
            id="running-step-cancelled",
        ),
        pytest.param(
            running_b(),
            [sqj_job("b").suspended()],
            ["s-b"],
            {"a": "Completed", "b": "Cancelled", "c": "Skipped"},
            id="suspended-step-cancelled",
        ),
        pytest.param(
            running_b(),
            [],
            [],
            {"a": "Completed", "b": "Cancelled", "c": "Skipped"},
            id="job-not-seen",
        ),
        pytest.param(
            make_status()
            .set(start_time=stamp(0))
            .step("a", "Completed")
            .step("b", "Completed")
            .step("c", "Completed"),
            [],
            [],
            {"a": "Completed", "b": "Completed", "c": "Completed"},
            id="nothing-left",
        ),
    ],
)
def test_stop(
    status: StatusBuilder, jobs: list[JobBuilder], deleted: list[str], expected: dict[str, str]
) -> None:
    w = make_work(SQJ, status, jobs, now=parse_ts(stamp(61)))
    deadline.stop(w)
    assert w.plan.delete == deleted
    assert phases(w) == expected
    changed = [s for s in w.status.steps if s.phase in {"Cancelled", "Skipped"}]
    assert w.deadline_hit is bool(changed)
    for st in changed:
        assert (st.reason, st.message) == (
            "DeadlineExceeded",
            "the sequence exceeded activeDeadlineSeconds=60",
        )
