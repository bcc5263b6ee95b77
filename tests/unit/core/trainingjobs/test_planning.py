"""One reconcile of a TrainingJob: launch, states, gang restart, budget, suspend, deadline, TTL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataworks.api import trainingjob as api
from dataworks.core.kit.jobs import JobView
from dataworks.core.kit.plan import Meta
from dataworks.core.trainingjobs.failures import Failure
from dataworks.core.trainingjobs.planning import STATES, plan
from dataworks.core.trainingjobs.workers import Workers

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
META = Meta(name="tj", namespace="ns", generation=1, uid="u")


def spec(**kw: Any) -> api.TrainingJobSpec:
    return api.TrainingJobSpec.model_validate({"model": "m", "dataset": "d", "numWorkers": 2, **kw})


def status(**kw: Any) -> api.TrainingJobStatus:
    return api.TrainingJobStatus.model_validate({"startTime": "2026-12-01T11:59:00Z", **kw})


def job(attempt: int, state: str, **kw: Any) -> JobView:
    return JobView(name=f"tj-a{attempt}", step="", attempt=attempt, state=state, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("the_spec", "old", "jobs", "workers", "failure", "state", "launch", "delete", "events"),
    [
        pytest.param(spec(), None, [], Workers(), None, "Created", 1, [], ["Created"], id="first-launch"),
        pytest.param(
            spec(),
            status(state="Created"),
            [job(1, "Active")],
            Workers(running=1, pending=1),
            None,
            "Initializing",
            None,
            [],
            [],
            id="starting",
        ),
        pytest.param(
            spec(),
            status(state="Initializing"),
            [job(1, "Active")],
            Workers(running=2),
            None,
            "Running",
            None,
            [],
            ["Running"],
            id="all-running",
        ),
        pytest.param(
            spec(),
            status(state="Running", ready="2/2"),
            [job(1, "Active")],
            Workers(running=0, started=2),
            None,
            "Running",
            None,
            [],
            ["WorkersNotReady"],
            id="ran-then-not-ready-stays-running",
        ),
        pytest.param(
            spec(),
            status(state="Running", ready="1/2"),
            [job(1, "Active")],
            Workers(running=0, started=2),
            None,
            "Running",
            None,
            [],
            [],
            id="still-not-ready-warns-once",
        ),
        pytest.param(
            spec(),
            status(state="Running", ready="2/2"),
            [job(1, "Active")],
            Workers(running=1, pending=1, started=1),
            None,
            "Initializing",
            None,
            [],
            [],
            id="a-replaced-worker-waits-again",
        ),
        pytest.param(
            spec(),
            status(state="Running"),
            [job(1, "Succeeded")],
            Workers(),
            None,
            "Succeeded",
            None,
            [],
            ["Succeeded"],
            id="succeeded",
        ),
        pytest.param(
            spec(),
            status(state="Running"),
            [job(1, "Failed")],
            Workers(),
            Failure("ExitCode", 1, 3),
            "Restarting",
            2,
            ["tj-a1"],
            ["Restarting"],
            id="gang-restart",
        ),
        pytest.param(
            spec(backoffLimit=1),
            status(state="Running", attempt=2, restartCount=1),
            [job(2, "Failed")],
            Workers(),
            Failure("ExitCode", 0, 1),
            "Failed",
            None,
            [],
            ["Failed"],
            id="budget-spent",
        ),
        pytest.param(
            spec(backoffLimit=0),
            status(state="Running"),
            [job(1, "Failed")],
            Workers(),
            Failure("Evicted", 0, None, disruption=True),
            "Restarting",
            2,
            ["tj-a1"],
            ["Restarting"],
            id="disruption-not-counted",
        ),
        pytest.param(
            spec(failurePolicy={"nonRetryableReasons": ["OOMKilled"]}),
            status(state="Running"),
            [job(1, "Failed")],
            Workers(),
            Failure("OOMKilled", 1, 137),
            "Failed",
            None,
            [],
            ["Failed"],
            id="non-retryable",
        ),
        pytest.param(
            spec(suspend=True),
            status(state="Running"),
            [job(1, "Active")],
            Workers(running=2),
            None,
            "Suspended",
            None,
            [],
            ["Suspended"],
            id="suspend",
        ),
        pytest.param(
            spec(),
            status(state="Suspended"),
            [job(1, "Suspended")],
            Workers(),
            None,
            "Initializing",
            None,
            [],
            ["Resumed"],
            id="resume",
        ),
        pytest.param(
            spec(),
            status(state="Restarting", attempt=2, conditions=[{"type": "Restarting", "status": "True"}]),
            [job(1, "Failed", deleting=True), job(2, "Active")],
            Workers(),
            None,
            "Restarting",
            None,
            [],
            [],
            id="old-attempt-being-deleted",
        ),
        pytest.param(
            spec(activeDeadlineSeconds=30),
            status(state="Running"),
            [job(1, "Active")],
            Workers(running=2),
            None,
            "Failed",
            None,
            ["tj-a1"],
            ["Failed"],
            id="deadline",
        ),
    ],
)
def test_plan(  # noqa: PLR0917 (one parameter per column of the table)
    the_spec: api.TrainingJobSpec,
    old: api.TrainingJobStatus | None,
    jobs: list[JobView],
    workers: Workers,
    failure: Failure | None,
    state: str,
    launch: int | None,
    delete: list[str],
    events: list[str],
) -> None:
    p = plan(META, the_spec, old, jobs, workers, failure=failure, now=NOW)
    assert p.status.state == state
    assert p.launch == launch
    assert p.delete == delete
    assert [e.reason for e in p.events] == events
    true = [c.type for c in p.status.conditions if c.status == "True"]
    assert true == ([] if state == "Created" else [state])
    if state not in ("Created", old.state if old else None):  # entering a state writes all six
        assert sorted(c.type for c in p.status.conditions) == sorted(STATES)


def test_a_job_that_finished_before_running_was_seen_still_says_it_is_not_running() -> None:
    # A short job on a busy operator: Initializing, then Succeeded, never observed all running.
    first = plan(META, spec(), status(state="Created"), [job(1, "Active")], Workers(), failure=None, now=NOW)
    later = NOW + timedelta(seconds=3)
    p = plan(META, spec(), first.status, [job(1, "Succeeded")], Workers(), failure=None, now=later)
    running = next(c for c in p.status.conditions if c.type == "Running")
    assert (running.status, running.reason) == ("False", "Succeeded")


def test_the_last_report_read_as_the_job_succeeds_is_kept() -> None:
    """A resumed attempt can finish between two polls of rank 0's log: the read made as the Job
    succeeds still puts its last epoch and its tracking run in the final status."""
    from dataworks.training.progress import parse_progress

    last = parse_progress(
        'DATAWORKS_PROGRESS {"epoch":6,"metrics":{"loss":0.1},'
        '"mlflow":{"runId":"r1","url":""},"totalEpochs":6}'
    )
    old = status(state="Running", attempt=2, currentEpoch=3, totalEpochs=6)
    p = plan(META, spec(), old, [job(2, "Succeeded")], Workers(), failure=None, now=NOW, reported=last)
    assert p.status.state == "Succeeded"
    assert (p.status.current_epoch, p.status.progress) == (6, "100%")
    assert p.status.tracking == api.TrackingStatus(mlflow_run_id="r1", mlflow_run_url=None)
    without = plan(META, spec(), old, [job(2, "Succeeded")], Workers(), failure=None, now=NOW)
    assert (without.status.state, without.status.current_epoch, without.status.tracking) == (
        "Succeeded",
        3,
        None,
    )


def test_a_restart_is_recorded() -> None:
    p = plan(
        META,
        spec(),
        status(state="Running"),
        [job(1, "Failed")],
        Workers(),
        failure=Failure("OOMKilled", 1, 137, "killed"),
        now=NOW,
    )
    (r,) = p.status.restarts
    assert (r.attempt, r.cause, r.worker, r.exit_code, r.counted) == (2, "OOMKilled", 1, 137, True)
    assert p.status.job_name == "tj-a2"
    assert p.status.restart_count == 1


def test_waiting_workers_are_looked_at_again_soon() -> None:
    p = plan(
        META,
        spec(),
        status(state="Initializing"),
        [job(1, "Active")],
        Workers(0, 2, "Unschedulable", "no"),
        failure=None,
        now=NOW,
    )
    assert p.requeue_at == NOW + timedelta(seconds=5)
    assert p.status.message == "no"


def test_a_finished_training_is_deleted_after_its_ttl() -> None:
    old = status(state="Succeeded", completionTime="2026-12-01T11:00:00Z")
    assert plan(META, spec(ttlSecondsAfterFinished=60), old, [], Workers(), failure=None, now=NOW).delete_self
    assert not plan(META, spec(), old, [], Workers(), failure=None, now=NOW).delete_self


def test_a_restart_records_its_recovery_time_once_the_new_attempt_runs() -> None:
    restart = {"attempt": 2, "cause": "ExitCode", "time": "2026-12-01T11:59:50Z"}
    old = status(state="Restarting", attempt=2, restartCount=1, restarts=[restart])
    running = Workers(running=2, started=2)
    p = plan(META, spec(), old, [job(2, "Active")], running, failure=None, now=NOW)
    assert p.status.state == "Running"
    assert p.status.restarts[-1].recovered_after_seconds == 10.0
    later = plan(META, spec(), p.status, [job(2, "Active")], running, failure=None, now=NOW)
    assert later.status.restarts[-1].recovered_after_seconds == 10.0  # recorded once
