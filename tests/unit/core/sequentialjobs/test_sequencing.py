"""Pins the order steps run in (core/sequentialjobs/sequencing.py): one at a time, each once every step
before it completed or failed with onFailure: continue; a step recorded Running whose Job is not seen
is launched again under the same name (the create adopts it); a step that fails with onFailure: stop
skips every later step; a launch carries the container, its policy, its run and the Job name."""

from __future__ import annotations

import pytest

from dataworks.core.sequentialjobs import sequencing
from tests.builders.jobs import JobBuilder
from tests.builders.sequentialjobs import (
    SqjBuilder,
    StatusBuilder,
    make_sqj,
    make_status,
    make_work,
    phases,
    sqj_job,
    stamp,
)

CONTINUE_B = make_sqj("s", "a", "b", "c").policy("b", onFailure="continue")
STOP = make_sqj("s", "a", "b", "c")


@pytest.mark.parametrize(
    ("builder", "status", "jobs", "launch"),
    [
        pytest.param(STOP, None, [], "a", id="first"),
        pytest.param(
            STOP,
            make_status().step("a", "Running").step("b").step("c"),
            [sqj_job("a").started()],
            None,
            id="one-at-a-time",
        ),
        pytest.param(
            STOP, make_status().step("a", "Completed").step("b").step("c"), [], "b", id="after-completed"
        ),
        pytest.param(STOP, make_status().step("a", "Failed").step("b").step("c"), [], None, id="stop"),
        pytest.param(
            CONTINUE_B,
            make_status().step("a", "Completed").step("b", "Failed").step("c"),
            [],
            "c",
            id="continue",
        ),
        pytest.param(
            STOP,
            make_status().step("a", "Completed").step("b", "Running").step("c"),
            [],
            "b",
            id="relaunch-unseen",
        ),
        pytest.param(
            STOP,
            make_status().step("a", "Completed").step("b", "Completed").step("c", "Completed"),
            [],
            None,
            id="all-done",
        ),
        pytest.param(
            STOP,
            make_status().step("a", "Cancelled").step("b", "Skipped").step("c", "Skipped"),
            [],
            None,
            id="cancelled",
        ),
    ],
)
def test_next_step(
    builder: SqjBuilder, status: StatusBuilder | None, jobs: list[JobBuilder], launch: str | None
) -> None:
    w = make_work(builder, status, jobs)
    index = sequencing.next_step(w)
    assert (w.status.steps[index].name if index is not None else None) == launch


def test_schedule_launches_the_step_with_its_policy_and_run() -> None:
    builder = make_sqj("s", "a", "b").policy("b", backoffLimit=2, activeDeadlineSeconds=60)
    w = make_work(builder, make_status().set(start_time=stamp(0)).step("a", "Completed").step("b", attempt=3))
    sequencing.schedule(w)
    (launch,) = w.plan.create
    assert (launch.index, launch.container.name, launch.attempt, launch.job_name) == (1, "b", 3, "s-b-a3")
    assert (launch.policy.backoff_limit, launch.policy.active_deadline_seconds) == (2, 60)
    b = w.by_name["b"]
    assert (b.phase, b.job_name, b.start_time) == ("Running", "s-b-a3", stamp())
    assert w.status.start_time == stamp(0)  # the sequence started earlier


def test_the_first_launch_starts_the_sequence() -> None:
    w = make_work(make_sqj("s", "a"), None)
    sequencing.schedule(w)
    assert w.status.start_time == stamp()
    assert [launch.job_name for launch in w.plan.create] == ["s-a"]


@pytest.mark.parametrize(
    ("builder", "status", "expected"),
    [
        pytest.param(
            STOP,
            make_status().step("a", "Failed").step("b").step("c"),
            {"a": "Failed", "b": "Skipped", "c": "Skipped"},
            id="stop-skips-the-rest",
        ),
        pytest.param(
            CONTINUE_B,
            make_status().step("a", "Completed").step("b", "Failed").step("c"),
            {"a": "Completed", "b": "Failed", "c": "Waiting"},
            id="continue-skips-nothing",
        ),
        pytest.param(
            STOP,
            make_status().step("a", "Completed").step("b", "Running").step("c"),
            {"a": "Completed", "b": "Running", "c": "Waiting"},
            id="running",
        ),
    ],
)
def test_skip_after_stop(builder: SqjBuilder, status: StatusBuilder, expected: dict[str, str]) -> None:
    w = make_work(builder, status)
    sequencing.skip_after_stop(w)
    assert phases(w) == expected
    for st in w.status.steps:
        if st.phase == "Skipped":
            assert (st.reason, st.message) == ("SequenceStopped", "skipped: job 0 (a) failed")
