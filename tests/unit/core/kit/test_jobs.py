"""Pins the Job reader (core/kit/jobs.py) over Job and Pod objects as the API server returns them:
which conditions make a Job Succeeded, Failed or Suspended (a condition counts only with status
"True"), the counts, labels and deletion it carries into a JobView, the failed pods' most telling
termination reason, and the termination message cut to the one line a user needs."""

from __future__ import annotations

from typing import Any

import pytest

from dataworks.core.kit import jobs
from tests.builders.jobs import FINISHED, STARTED, make_job, make_pod, step_job


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        pytest.param(step_job("a"), {"state": "Active", "active": 1}, id="started-is-active"),
        pytest.param(make_job("j"), {"state": "Active", "active": 0, "start_time": None}, id="not-started"),
        pytest.param(
            step_job("a").succeeded(),
            {"state": "Succeeded", "succeeded": 1, "active": 0, "completion_time": FINISHED, "reason": None},
            id="complete",
        ),
        pytest.param(
            step_job("a").success_criteria_met(),
            {"state": "Succeeded", "completion_time": None},
            id="success-criteria-met-before-complete",
        ),
        pytest.param(
            step_job("a").failed("DeadlineExceeded", "Job was active longer than specified deadline"),
            {
                "state": "Failed",
                "reason": "DeadlineExceeded",
                "message": "Job was active longer than specified deadline",
                "failed": 1,
            },
            id="failed-carries-reason-and-message",
        ),
        pytest.param(
            step_job("a").failure_target("PodFailurePolicy", "Container main exited with 2"),
            {"state": "Failed", "reason": "PodFailurePolicy", "message": "Container main exited with 2"},
            id="failure-target-before-failed",
        ),
        pytest.param(
            step_job("a").condition("Failed", "False").condition("Complete", "False"),
            {"state": "Active", "reason": None},
            id="false-conditions-do-not-count",
        ),
        pytest.param(step_job("a").suspended(), {"state": "Suspended", "active": 0}, id="suspended"),
        pytest.param(step_job("a").resumed(), {"state": "Active"}, id="resumed-suspended-false"),
        pytest.param(
            step_job("a").suspended().succeeded(), {"state": "Succeeded"}, id="complete-wins-over-suspend"
        ),
        pytest.param(step_job("a").suspended().failed(), {"state": "Failed"}, id="failed-wins-over-suspend"),
        pytest.param(
            step_job("f", type_="fan-out")
            .indexed(4)
            .failed("FailedIndexes", "Job has failed indexes", count=5)
            .counts(succeeded=1, failed=5)
            .indexes("0,2-3", completed="1"),
            {"state": "Failed", "succeeded": 1, "failed": 5, "failed_indexes": "0,2-3"},
            id="fan-out-failed-indexes",
        ),
        pytest.param(
            step_job("f").counts(active=3).indexes(""), {"failed_indexes": None, "active": 3}, id="no-index"
        ),
        pytest.param(
            step_job("b", 3, pipeline="nightly"),
            {"name": "nightly-b-a3", "step": "b", "attempt": 3, "start_time": STARTED},
            id="labels-step-and-attempt",
        ),
        pytest.param(make_job("other"), {"step": "", "attempt": 1}, id="no-labels-no-step"),
        pytest.param(
            step_job("a").label("dataworks.io/attempt", "two"), {"attempt": 1}, id="bad-attempt-is-one"
        ),
        pytest.param(step_job("a").deleting(), {"deleting": True}, id="deleting"),
        pytest.param(step_job("a"), {"deleting": False, "pod_reason": None}, id="not-deleting"),
    ],
)
def test_job_view(job: Any, expected: dict[str, Any]) -> None:
    view = jobs.job_view(job.build())
    assert {k: getattr(view, k) for k in expected} == expected


def test_job_view_of_an_empty_object_is_an_active_nameless_job() -> None:
    assert jobs.job_view({}) == jobs.JobView(name="", step="", attempt=1, state="Active")


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        pytest.param([], None, id="no-pods"),
        pytest.param([make_pod().exited(1)], None, id="plain-error-says-nothing"),
        pytest.param([make_pod().exited(137, "OOMKilled")], "OOMKilled", id="oom"),
        pytest.param(
            [make_pod().exited(1), make_pod().exited(137, "OOMKilled"), make_pod().exited(1)],
            "OOMKilled",
            id="specific-over-error",
        ),
        pytest.param(
            [make_pod().exited(137, "OOMKilled"), make_pod().exited(2, "ContainerCannotRun")],
            "ContainerCannotRun",
            id="last-specific",
        ),
        pytest.param(
            [make_pod().exited(0, "OOMKilled"), make_pod().exited(0, "Completed")], None, id="exit-0-ignored"
        ),
        pytest.param(
            [make_pod().exited(0, "Completed").exited(137, "OOMKilled")], "OOMKilled", id="second-container"
        ),
        pytest.param([make_pod().running(), make_pod().waiting("ErrImagePull")], None, id="not-terminated"),
    ],
)
def test_pod_failure_reason(pods: list[Any], expected: str | None) -> None:
    assert jobs.pod_failure_reason([p.build() for p in pods]) == expected


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        pytest.param([make_pod().exited(1)], None, id="no-message"),
        pytest.param([make_pod().exited(1, message=" \n\t\n")], None, id="blank-message"),
        pytest.param(
            [make_pod().exited(0, "Completed", message="error: not a failure")], None, id="exit-0-ignored"
        ),
        pytest.param(
            [make_pod().exited(1, message="loading\nerror: table t not found\n")],
            "table t not found",
            id="error-line",
        ),
        pytest.param(
            [make_pod().exited(1, message="error: first\nerror: second\nTraceback ...")],
            "second",
            id="last-error-line",
        ),
        pytest.param(
            [make_pod().exited(1, message="  warming up\n  killed by signal  \n\n")],
            "killed by signal",
            id="last-line-stripped",
        ),
        pytest.param(
            [
                make_pod().exited(1, message="error: late", at="2026-01-01T00:09:00Z"),
                make_pod().exited(1, message="error: early", at="2026-01-01T00:01:00Z"),
            ],
            "late",
            id="newest-whatever-the-order",
        ),
        pytest.param(
            [
                make_pod().exited(1, message="error: undated", at=None),
                make_pod().exited(1, message="error: dated", at="2026-01-01T00:01:00Z"),
            ],
            "dated",
            id="undated-is-oldest",
        ),
        pytest.param(
            [make_pod().exited(1, message="error: main").exited(0, "Completed", message="sidecar done")],
            "main",
            id="failed-container-only",
        ),
    ],
)
def test_pod_failure_message(pods: list[Any], expected: str | None) -> None:
    assert jobs.pod_failure_message([p.build() for p in pods]) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("error: " + "x" * 400, "x" * 400, id="limit-kept"),
        pytest.param("error: " + "x" * 401, "x" * 399 + "…", id="over-limit-cut"),
        pytest.param("error:no-space\nlast", "last", id="prefix-needs-space"),
    ],
)
def test_one_line(text: str, expected: str) -> None:
    assert jobs.one_line(text) == expected
    assert len(jobs.one_line(text)) <= jobs.MESSAGE_LIMIT


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        pytest.param("", None, id="none"),
        pytest.param("PROGRESS: 42.5%\n", 0.425, id="percent"),
        pytest.param("PROGRESS: 10%\nPROGRESS: 70%\nother", 0.7, id="last-wins"),
        pytest.param("PROGRESS: 70%\nPROGRESS: soon", 0.7, id="unreadable-skipped"),
        pytest.param("PROGRESS: 250%", 1.0, id="clamped-high"),
        pytest.param("PROGRESS: -5%", 0.0, id="clamped-low"),
        pytest.param("  PROGRESS:12", 0.12, id="no-percent-sign"),
    ],
)
def test_last_progress(tail: str, expected: float | None) -> None:
    assert jobs.last_progress(tail) == (pytest.approx(expected) if expected is not None else None)
