"""Pins what a step's observed Job means for its status (core/pipelines/observing.py): the phase
each Job state gives, when completion and start times are taken from the Job or from `now`, the
failure reason (a pod's OOMKilled over the Job's reason) and message (the Job's, the worker's
own line, or "N of P workers failed" for a fan-out), fan-out worker counts, a failure recorded
once, and which Jobs are not the step's (another attempt, being deleted, no step label)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dataworks.core.pipelines import observing
from tests.builders.jobs import FINISHED, STARTED, JobBuilder, make_pod, step_job
from tests.builders.pipelines import T0, PipelineBuilder, make_pipeline, make_status, make_work, stamp

NOW = T0 + timedelta(minutes=10)
OOM = make_pod().exited(137, "OOMKilled")
SAID = make_pod().exited(1, message="loading orders\nerror: column total not found")
LIMIT = "Job has reached the specified backoff limit"
SQL = {"sql": "SELECT 1"}  # a fan-out runs sql, a script or a command in each worker


def pipeline() -> PipelineBuilder:
    return (
        make_pipeline("p")
        .step("a")
        .step("f", "fan-out", parallelism=4, config=SQL)
        .step("one", "fan-out", parallelism=1, config=SQL)
    )


def observe(step: str, job: JobBuilder, phase: str = "Running", **old: Any) -> dict[str, Any]:
    """The status of `step` (old phase `phase`, fields `old`, its Job name `job_name`) after
    observing `job`."""
    status = make_status()
    for name in ("a", "f", "one"):
        given = old if name == step else {}
        kw = {k: v for k, v in given.items() if k != "job_name"}
        status.step(name, phase if name == step else "Waiting", job=given.get("job_name"), **kw)
    w = make_work(pipeline(), status, [job], now=NOW)
    observing.observe(w)
    return w.by_name[step].model_dump()


def fan(job: JobBuilder) -> JobBuilder:
    return job.indexed(4)


@pytest.mark.parametrize(
    ("step", "job", "old", "expected"),
    [
        pytest.param(
            "a",
            step_job("a"),
            {"start_time": stamp(1)},
            {"phase": "Running", "job_name": "p-a", "start_time": stamp(1)},
            id="active-keeps-launch-time",
        ),
        pytest.param(
            "a",
            step_job("a"),
            {"phase": "Waiting"},
            {"phase": "Running", "job_name": "p-a", "start_time": STARTED},
            id="adopted-takes-job-start",
        ),
        pytest.param("a", step_job("a").suspended(), {}, {"phase": "Running"}, id="suspended-job-running"),
        pytest.param(
            "a",
            step_job("a").succeeded(),
            {"reason": "Stale", "message": "stale"},
            {"phase": "Completed", "completion_time": FINISHED, "reason": None, "message": None},
            id="complete-takes-job-time",
        ),
        pytest.param(
            "a",
            step_job("a").succeeded(at=None),
            {},
            {"phase": "Completed", "completion_time": stamp(600)},
            id="complete-without-time-is-now",
        ),
        pytest.param(
            "a",
            step_job("a").success_criteria_met(),
            {},
            {"phase": "Completed", "completion_time": stamp(600)},
            id="success-criteria-met-completes",
        ),
        pytest.param(
            "a",
            step_job("a").succeeded(),
            {"phase": "Completed", "completion_time": stamp(9)},
            {"phase": "Completed", "completion_time": stamp(9)},
            id="completion-recorded-once",
        ),
        pytest.param(
            "a",
            step_job("a").failed(),
            {},
            {"phase": "Failed", "reason": "BackoffLimitExceeded", "message": LIMIT, "workers": None},
            id="failed-job-reason",
        ),
        pytest.param(
            "a",
            step_job("a").failure_target("PodFailurePolicy", "Container main exited with 2"),
            {},
            {"phase": "Failed", "reason": "PodFailurePolicy", "message": "Container main exited with 2"},
            id="failure-target-fails",
        ),
        pytest.param(
            "a",
            step_job("a").condition("Failed", "True"),
            {},
            {"phase": "Failed", "reason": "Failed", "message": ""},
            id="no-reason-at-all",
        ),
        pytest.param(
            "a",
            step_job("a").failed().pod(make_pod().exited(1), OOM),
            {},
            {"phase": "Failed", "reason": "OOMKilled", "message": f"BackoffLimitExceeded: {LIMIT}"},
            id="pod-reason-over-job-reason",
        ),
        pytest.param(
            "a",
            step_job("a").failed(message="").pod(OOM),
            {},
            {"reason": "OOMKilled", "message": "BackoffLimitExceeded: the Job failed"},
            id="pod-reason-without-job-message",
        ),
        pytest.param(
            "a",
            step_job("a").failed().pod(SAID),
            {},
            {"reason": "BackoffLimitExceeded", "message": f"{LIMIT}: column total not found"},
            id="worker-line-appended",
        ),
        pytest.param(
            "a",
            step_job("a").condition("Failed", "True").pod(SAID),
            {},
            {"reason": "Failed", "message": "column total not found"},
            id="worker-line-alone",
        ),
        pytest.param(
            "a",
            step_job("a").failed().pod(SAID),
            {"phase": "Failed", "reason": "OOMKilled", "message": "recorded"},
            {"phase": "Failed", "reason": "OOMKilled", "message": "recorded"},
            id="failure-recorded-once",
        ),
        pytest.param(
            "a",
            step_job("a").failed().pod(OOM),
            {"phase": "Failed", "job_name": "p-a-adopted", "reason": "Error", "message": "recorded"},
            {"job_name": "p-a", "reason": "OOMKilled", "message": f"BackoffLimitExceeded: {LIMIT}"},
            id="failure-of-another-job-recorded-again",
        ),
        pytest.param(
            "f",
            fan(step_job("f", type_="fan-out")).counts(active=3, succeeded=1),
            {},
            {
                "phase": "Running",
                "workers": {"active": 3, "succeeded": 1, "failed": 0, "failed_indexes": None},
            },
            id="fan-out-counts",
        ),
        pytest.param(
            "f",
            fan(step_job("f", type_="fan-out")).failed("FailedIndexes", count=6).indexes("0,2-3"),
            {},
            {
                "message": "3 of 4 workers failed (FailedIndexes)",
                "workers": {"active": 0, "succeeded": 0, "failed": 6, "failed_indexes": "0,2-3"},
            },
            id="fan-out-failed-indexes-not-pods",
        ),
        pytest.param(
            "f",
            step_job("f", type_="fan-out").failed(count=2),
            {},
            {"reason": "BackoffLimitExceeded", "message": "2 of 4 workers failed (BackoffLimitExceeded)"},
            id="fan-out-failed-count-without-indexes",
        ),
        pytest.param(
            "f",
            fan(step_job("f", type_="fan-out")).failed("FailedIndexes").indexes("1").pod(OOM, SAID),
            {},
            {"reason": "OOMKilled", "message": "1 of 4 workers failed (OOMKilled): column total not found"},
            id="fan-out-oom-and-worker-line",
        ),
        pytest.param(
            "one",
            step_job("one", type_="fan-out").failed(),
            {},
            {"message": LIMIT, "workers": {"active": 0, "succeeded": 0, "failed": 1, "failed_indexes": None}},
            id="fan-out-of-one-reads-like-a-step",
        ),
    ],
)
def test_apply_job(step: str, job: JobBuilder, old: dict[str, Any], expected: dict[str, Any]) -> None:
    got = observe(step, job, **old)
    assert {k: got[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("old", "job", "expected"),
    [
        pytest.param(
            make_status().step("a", "Cancelled", job="p-a"),
            step_job("a").succeeded(),
            "Cancelled",
            id="cancelled-stays",
        ),
        pytest.param(make_status().step("a", "Skipped"), step_job("a"), "Skipped", id="skipped-stays"),
        pytest.param(
            make_status().step("a", "Waiting", attempt=2),
            step_job("a", 1).failed(),
            "Waiting",
            id="old-attempt-ignored",
        ),
        pytest.param(
            make_status().step("a", "Running", attempt=2),
            step_job("a", 2).failed(),
            "Failed",
            id="current-attempt-read",
        ),
        pytest.param(
            make_status().step("a", "Running"),
            step_job("a").failed().deleting(),
            "Running",
            id="deleting-ignored",
        ),
        pytest.param(
            make_status().step("a", "Running"),
            step_job("a").failed().label("dataworks.io/step", ""),
            "Running",
            id="no-step-label-ignored",
        ),
        pytest.param(make_status().step("a", "Running"), step_job("b").failed(), "Running", id="other-step"),
    ],
)
def test_observe_reads_only_the_current_attempts_job(old: Any, job: JobBuilder, expected: str) -> None:
    w = make_work(make_pipeline("p").step("a"), old, [job], now=NOW)
    observing.observe(w)
    assert w.by_name["a"].phase == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(None, set(), id="none"),
        pytest.param("", set(), id="empty"),
        pytest.param("3", {3}, id="one"),
        pytest.param("0,2-4", {0, 2, 3, 4}, id="list-and-range"),
        pytest.param("0-1,1-2", {0, 1, 2}, id="overlap"),
        pytest.param("5-5", {5}, id="single-range"),
        pytest.param("0,,2", {0, 2}, id="empty-part"),
    ],
)
def test_indexes(text: str | None, expected: set[int]) -> None:
    assert observing.indexes(text) == expected
