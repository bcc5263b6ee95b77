"""Pins what an observed Job means for its step (core/sequentialjobs/observing.py): active or suspended
is Running, succeeded is Completed with the container's output, failed is Failed with the most
telling reason and the container's own message; an outcome is recorded once, and an output read
after it is filled in ("" when the container left none, None while its pods are unread); only the
Job of the step's current run counts; skipped and cancelled steps keep their phase."""

from __future__ import annotations

import pytest

from dataworks.core.kit.clock import parse_ts as at
from dataworks.core.sequentialjobs import observing
from dataworks.core.sequentialjobs.work import PodFacts
from tests.builders.jobs import FINISHED, STARTED, JobBuilder
from tests.builders.sequentialjobs import StatusBuilder, make_sqj, make_status, make_work, sqj_job, stamp


def running_b() -> StatusBuilder:
    return make_status().step("a", "Completed").step("b", "Running")


@pytest.mark.parametrize(
    ("status", "job", "facts", "expected"),
    [
        pytest.param(
            running_b(), sqj_job("b").started(), PodFacts(), ("Running", None, None, None), id="active"
        ),
        pytest.param(
            running_b(), sqj_job("b").suspended(), PodFacts(), ("Running", None, None, None), id="suspended"
        ),
        pytest.param(
            running_b(),
            sqj_job("b").started().succeeded(),
            PodFacts(output="rows=3"),
            ("Completed", None, None, "rows=3"),
            id="succeeded",
        ),
        pytest.param(
            running_b(),
            sqj_job("b").started().success_criteria_met(),
            PodFacts(),
            ("Completed", None, None, ""),
            id="success-criteria-met",
        ),
        pytest.param(
            running_b(),
            sqj_job("b").started().failed(),
            PodFacts(output="boom"),
            ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit", "boom"),
            id="failed",
        ),
        pytest.param(
            running_b(),
            sqj_job("b").started().failed(),
            PodFacts(output="Killed", reason="OOMKilled", message="Killed"),
            (
                "Failed",
                "OOMKilled",
                "BackoffLimitExceeded: Job has reached the specified backoff limit: Killed",
                "Killed",
            ),
            id="oom-killed",
        ),
        pytest.param(
            running_b(),
            sqj_job("b")
            .started()
            .failed("DeadlineExceeded", "Job was active longer than specified deadline"),
            PodFacts(),
            ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline", ""),
            id="step-deadline",
        ),
        pytest.param(
            make_status().step("a", "Completed").step("b", "Failed", reason="Boom", message="recorded"),
            sqj_job("b").started().failed(),
            PodFacts(reason="OOMKilled"),
            ("Failed", "Boom", "recorded", ""),
            id="recorded-once",
        ),
        pytest.param(
            make_status().step("a", "Completed").step("b", "Completed"),
            sqj_job("b").started().succeeded(),
            PodFacts(output="rows=3"),
            ("Completed", None, None, "rows=3"),
            id="output-read-after-it-was-recorded",
        ),
        pytest.param(
            make_status().step("a", "Completed").step("b", "Completed", output="first"),
            sqj_job("b").started().succeeded(),
            PodFacts(output="second"),
            ("Completed", None, None, "first"),
            id="output-read-once",
        ),
        pytest.param(
            make_status().step("a", "Completed").step("b", "Running", attempt=2),
            sqj_job("b").started().failed(),
            PodFacts(),
            ("Running", None, None, None),
            id="earlier-run-ignored",
        ),
        pytest.param(
            make_status().step("a", "Completed").step("b", "Cancelled"),
            sqj_job("b").started().succeeded(),
            PodFacts(),
            ("Cancelled", None, None, None),
            id="cancelled-stays",
        ),
        pytest.param(
            make_status().step("a", "Completed").step("b"),
            sqj_job("b").started(),
            PodFacts(),
            ("Running", None, None, None),
            id="waiting-with-a-job-adopts-it",
        ),
        pytest.param(
            running_b(),
            sqj_job("b").started().deleting(),
            PodFacts(),
            ("Running", None, None, None),
            id="deleting",
        ),
    ],
)
def test_observe(
    status: StatusBuilder,
    job: JobBuilder,
    facts: PodFacts,
    expected: tuple[str, str | None, str | None, str | None],
) -> None:
    w = make_work(make_sqj("s", "a", "b"), status, [job], facts={job.body["metadata"]["name"]: facts})
    observing.observe(w)
    b = w.by_name["b"]
    assert (b.phase, b.reason, b.message, b.output) == expected


def test_times_and_failed_pods_come_from_the_job() -> None:
    job = sqj_job("b").started(STARTED).counts(failed=2).succeeded(FINISHED)
    later = at(stamp(3600))
    w = make_work(make_sqj("s", "a", "b"), make_status().step("a", "Completed").step("b"), [job], now=later)
    observing.observe(w)
    b = w.by_name["b"]
    assert (b.job_name, b.start_time, b.completion_time, b.failed_pods) == ("s-b", STARTED, FINISHED, 2)


def test_a_step_recorded_before_its_pods_were_read_has_no_output_yet() -> None:
    w = make_work(make_sqj("s", "a", "b"), running_b(), [sqj_job("b").started().succeeded()])
    observing.observe(w)
    assert (w.by_name["b"].phase, w.by_name["b"].output) == ("Completed", None)
