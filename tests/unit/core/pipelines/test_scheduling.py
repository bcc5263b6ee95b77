"""Pins which steps start now (core/pipelines/scheduling.py): a step is ready when every dependency
completed or failed with onFailure: continue; ready steps launch in topological order within the
maxParallel budget, where steps already running count (observed or not) and a running step whose
Job is not observed is launched again under the same name without taking budget; a launch records
the Job name, start time (kept on a relaunch) and spec hash; spec.suspend suspends running Jobs
and clearing it resumes them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dataworks.core.kit import naming
from dataworks.core.pipelines import scheduling
from tests.builders.jobs import JobBuilder, step_job
from tests.builders.pipelines import (
    T0,
    PipelineBuilder,
    StatusBuilder,
    make_pipeline,
    make_status,
    make_work,
    stamp,
)

NOW = T0 + timedelta(seconds=30)


@pytest.mark.parametrize(
    ("up", "on_failure", "ready"),
    [
        pytest.param("Completed", "fail", True, id="completed"),
        pytest.param("Failed", "continue", True, id="failed-continue"),
        pytest.param("Failed", "fail", False, id="failed-fail"),
        pytest.param("Failed", "skip-dependents", False, id="failed-skip-dependents"),
        pytest.param("Running", "continue", False, id="running"),
        pytest.param("Waiting", "fail", False, id="waiting"),
        pytest.param("Skipped", "continue", False, id="skipped"),
        pytest.param("Cancelled", "continue", False, id="cancelled"),
    ],
)
def test_ready(up: str, on_failure: str, ready: bool) -> None:
    b = make_pipeline("p").step("u1", onFailure=on_failure).step("u2").step("x", depends_on=["u1", "u2"])
    w = make_work(b, make_status().step("u1", up).step("u2", "Completed"))
    assert scheduling.ready(w, "x") is ready
    assert scheduling.ready(w, "u1") is True  # no dependencies: always ready


def wide(max_parallel: int | None = None) -> PipelineBuilder:
    b = make_pipeline("p")
    for i in range(5):
        b.step(f"s{i}")
    return b.set(maxParallel=max_parallel) if max_parallel else b


def running(*names: str, observed: tuple[str, ...] = ()) -> tuple[StatusBuilder, list[JobBuilder]]:
    """`names` recorded Running since 1 s; the Jobs of `observed` among them are seen."""
    status = make_status()
    for n in names:
        status.step(n, "Running", start_time=stamp(1))
    return status, [step_job(n) for n in observed]


@pytest.mark.parametrize(
    ("max_parallel", "state", "created"),
    [
        pytest.param(None, running(), ["s0", "s1", "s2", "s3", "s4"], id="unlimited"),
        pytest.param(2, running(), ["s0", "s1"], id="budget-in-manifest-order"),
        pytest.param(2, running("s0", observed=("s0",)), ["s1"], id="running-takes-budget"),
        pytest.param(2, running("s0", "s1", observed=("s1",)), ["s0"], id="relaunch-only-when-full"),
        pytest.param(
            3, running("s0", "s1", observed=("s1",)), ["s0", "s2"], id="relaunch-takes-no-new-budget"
        ),
        pytest.param(1, running("s0", "s1"), ["s0", "s1"], id="relaunch-over-lowered-budget"),
        pytest.param(
            None, running("s0", "s1", observed=("s0", "s1")), ["s2", "s3", "s4"], id="observed-kept"
        ),
    ],
)
def test_schedule_budget(
    max_parallel: int | None, state: tuple[StatusBuilder, list[JobBuilder]], created: list[str]
) -> None:
    status, jobs = state
    w = make_work(wide(max_parallel), status, jobs, now=NOW)
    scheduling.schedule(w)
    assert [launch.step.name for launch in w.plan.create] == created
    assert [launch.job_name for launch in w.plan.create] == [f"p-{n}" for n in created]
    running_now = sum(1 for s in w.status.step_statuses if s.phase == "Running")
    if max_parallel:
        assert running_now == max(max_parallel, len(status.steps))


@pytest.mark.parametrize(
    ("b", "old", "created"),
    [
        pytest.param(
            make_pipeline("p").step("a").step("b", depends_on=["a"]).step("c").set(maxParallel=2),
            make_status().step("a", "Running"),
            ["c"],
            id="not-ready-takes-no-budget",
        ),
        pytest.param(
            make_pipeline("p").step("a").step("b", depends_on=["a"]).step("c", depends_on=["b"]),
            make_status().step("a", "Completed"),
            ["b"],
            id="one-level-per-pass",
        ),
        pytest.param(
            make_pipeline("p").step("late", depends_on=["early"]).step("early"),
            make_status().step("late").step("early", "Completed"),
            ["late"],
            id="dependency-listed-after",
        ),
        pytest.param(
            make_pipeline("p").step("a").step("b", onFailure="continue").step("c", depends_on=["a", "b"]),
            make_status().step("a", "Completed").step("b", "Failed"),
            ["c"],
            id="after-continue",
        ),
        pytest.param(
            make_pipeline("p").step("a").step("b"),
            make_status().step("a", "Completed").step("b", "Skipped"),
            [],
            id="finished-steps-never-launch",
        ),
    ],
)
def test_schedule_follows_dependencies(b: PipelineBuilder, old: StatusBuilder, created: list[str]) -> None:
    jobs = [step_job(s.name).succeeded() for s in old.steps if s.phase == "Completed"]
    jobs += [step_job(s.name) for s in old.steps if s.phase == "Running"]
    w = make_work(b, old, jobs, now=NOW)
    scheduling.schedule(w)
    assert [launch.step.name for launch in w.plan.create] == created


@pytest.mark.parametrize(
    ("old", "expected"),
    [
        pytest.param(
            {"phase": "Waiting"},
            {"phase": "Running", "job_name": "p-a", "start_time": stamp(30), "attempt": 1},
            id="first-launch",
        ),
        pytest.param(
            {"phase": "Waiting", "attempt": 3},
            {"phase": "Running", "job_name": "p-a-a3", "start_time": stamp(30), "attempt": 3},
            id="retry-attempt-name",
        ),
        pytest.param(
            {"phase": "Running", "start_time": stamp(1)},
            {"phase": "Running", "job_name": "p-a", "start_time": stamp(1), "attempt": 1},
            id="relaunch-keeps-start",
        ),
    ],
)
def test_launch_records(old: dict[str, Any], expected: dict[str, Any]) -> None:
    w = make_work(make_pipeline("p").step("a", args=["x"]), make_status().step("a", **old), now=NOW)
    scheduling.schedule(w)
    (launch,) = w.plan.create
    assert (launch.job_name, launch.attempt, launch.step.args) == (
        expected["job_name"],
        expected["attempt"],
        ("x",),
    )
    st = w.by_name["a"].model_dump()
    assert {k: st[k] for k in expected} == expected
    assert st["spec_hash"] == w.defs["a"].fingerprint()


def test_long_names_launch_under_their_shortened_job_name() -> None:
    pipeline, step = "p" * 40, "s" * 40
    b = make_pipeline(pipeline).step(step)
    w = make_work(b, make_status(pipeline).step(step, attempt=2), now=NOW)
    scheduling.schedule(w)
    assert w.plan.create[0].job_name == naming.job_name(pipeline, step, 2)
    assert len(w.plan.create[0].job_name) == 63


@pytest.mark.parametrize(
    ("suspend", "phase", "job", "suspended", "resumed"),
    [
        pytest.param(True, "Running", step_job("a"), ["p-a"], [], id="suspend-active"),
        pytest.param(True, "Running", step_job("a").suspended(), [], [], id="already-suspended"),
        pytest.param(False, "Running", step_job("a").suspended(), [], ["p-a"], id="resume"),
        pytest.param(False, "Running", step_job("a"), [], [], id="running-stays"),
        pytest.param(True, "Running", None, [], [], id="unobserved"),
        pytest.param(True, "Completed", step_job("a").succeeded(), [], [], id="finished-step"),
        pytest.param(True, "Waiting", None, [], [], id="waiting-step"),
        pytest.param(True, "Running", step_job("a").succeeded(), [], [], id="job-finished"),
    ],
)
def test_suspend_or_resume(
    suspend: bool, phase: str, job: JobBuilder | None, suspended: list[str], resumed: list[str]
) -> None:
    b = make_pipeline("p").step("a").set(suspend=suspend)
    w = make_work(b, make_status().step("a", phase), [job] if job else [])
    scheduling.suspend_or_resume(w)
    assert (w.plan.suspend, w.plan.resume) == (suspended, resumed)
    assert w.plan.create == []
