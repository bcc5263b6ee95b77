"""Pins ScheduledPipelines (core/scheduledpipelines): due times in a time zone across DST, several
expressions as one schedule; after an outage only the latest missed run starts, at most once;
startingDeadlineSeconds; Allow, Forbid and Replace; one run per due time (a restart adopts it);
history limits; suspend; and a bad cron expression named before anything runs. `now` is passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataworks.api import scheduledpipeline as api
from dataworks.core.kit.clock import ts
from dataworks.core.kit.plan import Meta
from dataworks.core.scheduledpipelines import schedules
from dataworks.core.scheduledpipelines.planning import Run, plan, run_name

CREATED = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
META = Meta("nightly", "ns")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("exprs", "tz", "after", "expected"),
    [
        pytest.param(
            ["0 2 * * *"], "UTC", utc(2026, 12, 1, 2, 0), utc(2026, 12, 2, 2, 0), id="strictly-after"
        ),
        pytest.param(
            ["0 2 * * *"], "Europe/Berlin", utc(2026, 12, 1), utc(2026, 12, 1, 1, 0), id="winter-berlin"
        ),
        pytest.param(
            ["0 2 * * *"], "Europe/Berlin", utc(2026, 6, 30, 12), utc(2026, 7, 1, 0, 0), id="summer-berlin"
        ),
        pytest.param(
            ["30 2 * * *"],
            "Europe/Berlin",
            utc(2026, 3, 29),
            utc(2026, 3, 29, 1, 0),
            id="spring-gap-runs-after-it",
        ),
        pytest.param(
            ["30 1 * * *"], "America/New_York", utc(2026, 11, 1, 4), utc(2026, 11, 1, 5, 30), id="autumn-once"
        ),
        pytest.param(
            ["0 9 * * 1-5", "0 12 * * 6"],
            "UTC",
            utc(2026, 12, 4, 10),
            utc(2026, 12, 5, 12),
            id="several-expressions",
        ),
    ],
)
def test_next_time(exprs: list[str], tz: str, after: datetime, expected: datetime) -> None:
    assert schedules.next_time(exprs, after, tz) == expected


def test_an_autumn_hour_that_happens_twice_is_due_once() -> None:
    found = schedules.due(["30 1 * * *"], utc(2026, 10, 31, 12), utc(2026, 11, 2, 12), "America/New_York")
    assert found == schedules.Due(utc(2026, 11, 2, 6, 30), missed=1)  # 1 Nov (once) and 2 Nov


def spec(**kw: Any) -> api.ScheduledPipelineSpec:
    body = {"schedule": ["0 2 * * *"], "template": "etl", "parameters": {"day": "{{.scheduledDate}}"}}
    return api.ScheduledPipelineSpec.model_validate({**body, **kw})


def run(due: datetime, phase: str | None = "Running", done: str | None = None) -> Run:
    return Run(run_name("nightly", due), phase, due, done)


DAY1, DAY2, DAY3 = utc(2026, 12, 1, 2), utc(2026, 12, 2, 2), utc(2026, 12, 3, 2)


def test_the_first_due_time_starts_a_run_and_asks_to_wake_at_the_next() -> None:
    p = plan(META, CREATED, spec(), None, [], now=DAY1 + timedelta(seconds=3))
    assert p.create == [(run_name("nightly", DAY1), DAY1)]
    assert run_name("nightly", DAY1) == "nightly-29934840"  # minutes since 1970: one name per due time
    assert p.status.last_schedule_time == ts(DAY1)
    assert p.status.next_schedule_time == ts(DAY2)
    assert p.requeue_at == DAY2
    assert p.status.active == ["nightly-29934840"]
    assert [e.reason for e in p.events] == ["RunCreated"]


def test_nothing_is_due_before_the_first_time() -> None:
    p = plan(META, CREATED, spec(), None, [], now=DAY1 - timedelta(seconds=1))
    assert (p.create, p.events, p.requeue_at) == ([], [], DAY1)


def test_after_an_outage_only_the_latest_missed_run_starts_once() -> None:
    old = api.ScheduledPipelineStatus(last_schedule_time=ts(DAY1))
    now = DAY3 + timedelta(hours=5)
    p = plan(META, CREATED, spec(), old, [run(DAY1, "Completed", ts(DAY1 + timedelta(minutes=9)))], now=now)
    assert p.create == [(run_name("nightly", DAY3), DAY3)]
    assert "1 earlier due times were missed and will not run" in p.events[-1].message
    again = plan(META, CREATED, spec(), p.status, [run(DAY1, "Completed"), run(DAY3)], now=now)
    assert again.create == []  # once


def test_a_run_already_started_is_adopted_after_a_restart() -> None:
    # The operator died after creating the run and before writing the status.
    p = plan(META, CREATED, spec(), None, [run(DAY1)], now=DAY1 + timedelta(seconds=30))
    assert p.create == []
    assert p.status.last_schedule_time == ts(DAY1)
    assert p.status.active == [run_name("nightly", DAY1)]


def test_a_run_past_the_starting_deadline_is_skipped() -> None:
    p = plan(META, CREATED, spec(startingDeadlineSeconds=60), None, [], now=DAY1 + timedelta(minutes=5))
    assert p.create == []
    assert [e.reason for e in p.events] == ["MissedSchedule"]
    assert p.status.last_schedule_time == ts(DAY1)


@pytest.mark.parametrize(
    ("policy", "created", "deleted", "event"),
    [
        pytest.param("Allow", True, [], "RunCreated", id="allow"),
        pytest.param("Forbid", False, [], "ScheduleSkipped", id="forbid"),
        pytest.param("Replace", True, [run_name("nightly", DAY1)], "RunCreated", id="replace"),
    ],
)
def test_concurrency_policy(policy: str, created: bool, deleted: list[str], event: str) -> None:
    old = api.ScheduledPipelineStatus(last_schedule_time=ts(DAY1))
    p = plan(META, CREATED, spec(concurrencyPolicy=policy), old, [run(DAY1)], now=DAY2 + timedelta(seconds=1))
    assert bool(p.create) is created
    assert p.delete == deleted
    assert p.events[-1].reason == event
    assert p.status.last_schedule_time == ts(DAY2)  # a skipped run is not tried again
    expected_active = [run_name("nightly", DAY2)] if policy == "Replace" else [run_name("nightly", DAY1)]
    if policy == "Allow":
        expected_active = [run_name("nightly", DAY1), run_name("nightly", DAY2)]
    assert p.status.active == expected_active


def test_history_limits_delete_the_oldest_finished_runs() -> None:
    days = [CREATED + timedelta(days=i, hours=2) for i in range(6)]
    runs = [
        run(days[0], "Completed"),
        run(days[1], "Failed"),
        run(days[2], "Completed"),
        run(days[3], "Cancelled"),
        run(days[4], "Completed"),
        run(days[5], "Running"),
    ]
    old = api.ScheduledPipelineStatus(last_schedule_time=ts(days[5]))
    p = plan(
        META,
        CREATED,
        spec(successfulHistoryLimit=2, failedHistoryLimit=1),
        old,
        runs,
        now=days[5] + timedelta(minutes=1),
    )
    assert sorted(p.delete) == sorted([run_name("nightly", days[0]), run_name("nightly", days[1])])


def test_suspend_starts_nothing_and_has_no_next_time() -> None:
    p = plan(META, CREATED, spec(suspend=True), None, [], now=DAY3)
    assert (p.create, p.requeue_at, p.status.next_schedule_time) == ([], None, None)
    assert p.status.message == "suspended by spec.suspend"


def test_a_bad_cron_expression_is_named_and_nothing_runs() -> None:
    p = plan(META, CREATED, spec(schedule=["0 2 * *"]), None, [], now=DAY3)
    assert p.create == []
    message = "spec.schedule[0]: '0 2 * *' is not a cron expression of five fields, e.g. '0 2 * * *'"
    assert p.status.message == message
    assert [(e.type, e.reason) for e in p.events] == [("Warning", "InvalidSpec")]
