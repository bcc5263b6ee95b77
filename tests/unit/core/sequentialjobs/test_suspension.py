"""Pins suspend and resume (core/sequentialjobs/suspension.py): spec.suspend suspends the running
step's active Job, clearing it resumes the Job the sequence had suspended; a Job suspended by
someone else (Kueue, until it admits the step) is left suspended; Jobs of finished steps, and Jobs
already in the wanted state, are left alone."""

from __future__ import annotations

import pytest

from dataworks.core.sequentialjobs import suspension
from tests.builders.jobs import JobBuilder
from tests.builders.sequentialjobs import StatusBuilder, make_sqj, make_status, make_work, sqj_job


def running_b(phase: str = "Running") -> StatusBuilder:
    return make_status(phase).step("a", "Completed").step("b", "Running")


@pytest.mark.parametrize(
    ("suspend", "status", "jobs", "suspended", "resumed"),
    [
        pytest.param(True, running_b(), [sqj_job("b").started()], ["s-b"], [], id="suspend"),
        pytest.param(True, running_b(), [sqj_job("b").suspended()], [], [], id="already-suspended"),
        pytest.param(False, running_b("Suspended"), [sqj_job("b").suspended()], [], ["s-b"], id="resume"),
        pytest.param(False, running_b(), [sqj_job("b").suspended()], [], [], id="kueue-holds-it"),
        pytest.param(False, running_b(), [sqj_job("b").resumed()], [], [], id="already-running"),
        pytest.param(
            True,
            make_status().step("a", "Completed").step("b"),
            [sqj_job("a").started().succeeded()],
            [],
            [],
            id="nothing-running",
        ),
        pytest.param(True, running_b(), [], [], [], id="job-not-seen"),
    ],
)
def test_suspend_or_resume(
    suspend: bool, status: StatusBuilder, jobs: list[JobBuilder], suspended: list[str], resumed: list[str]
) -> None:
    w = make_work(make_sqj("s", "a", "b").set(suspend=suspend), status, jobs)
    suspension.suspend_or_resume(w)
    assert (w.plan.suspend, w.plan.resume) == (suspended, resumed)
